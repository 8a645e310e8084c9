"""The hashing port: the values that cross it and the interface both engines implement.

An engine walks a context under its ignore rules and hashes a list of entries against the stat memo;
it also encodes files for the workspace hash and packs a folder's memo records, the two byte formats
that `recipe` and `memo` define and that the C engine produces without making Python objects.
Everything else (what a listing keeps, which entries a Dockerfile reads, what the hash takes in) is
decided once, outside the engines.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ..errors import InputError

if TYPE_CHECKING:  # the chooser imports this module, and `regless version` the chooser: no libraries here
    from .ignore import IgnoreRules

StatKey = tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode
MemoDir = dict[str, Any]  # one folder's records: file name -> (StatKey, digest hex); checked where used
Progress = Callable[[int, int], None]  # (files done, bytes read)
NOT_A_FILE = "changed into something that is not a file while regless read it"


class Entry(NamedTuple):
    """One entry of a context's listing. A tuple: a large context lists 100,000 of them per run, and
    the C engine makes and reads them without attribute lookups."""

    rel: str  # relative to the context, POSIX separators
    abspath: str
    kind: str  # "file" | "dir" | "symlink"
    folder: str  # absolute path of the folder that holds it (the memo's key)
    name: str


class InputFile(NamedTuple):
    """One input file of an artifact, as the workspace hash takes it in."""

    path: str  # relative to the context, POSIX separators
    kind: str  # "file" | "symlink"
    executable: bool
    digest: str  # xxh3-128 of the content, or of the symlink's target text


class Hashed(NamedTuple):
    """What hashing a list of entries gives: the files (in the entries' order), the memo records made
    for files that were read (by folder), and the content bytes read."""

    files: list[InputFile]
    records: dict[str, MemoDir]
    bytes_read: int


class StatMemo(Protocol):
    """The stat memo's read side: one record per folder (absolute path). A memo may also offer
    `packed(folder)`, the record as the index stores it, which the C engine reads in place."""

    def get(self, folder: str) -> MemoDir | None:
        """The folder's records, or None."""
        ...


class Engine(Protocol):
    """The port: one implementation in C, one in Python, held to the same results by a property test."""

    name: str

    def walk(self, context: Path, rules: IgnoreRules) -> list[Entry]:
        """Every entry of the context that the rules leave in, sorted by path. Raises OSError."""
        ...

    def hash(self, entries: list[Entry], memo: StatMemo | None, progress: Progress | None) -> Hashed:
        """Hash each file or symlink entry, trusting a memo record whose stat key still matches.
        Raises InputError (`unreadable`) for an entry that cannot be read."""
        ...

    def encode_files(self, files: Sequence[InputFile]) -> bytes:
        """The workspace hash's bytes for the files (recipe.encode_files)."""
        ...

    def pack_memo(self, names: MemoDir) -> bytes:
        """A folder's memo records as the index stores them (memo.pack)."""
        ...


def unreadable(entry: Entry, err: int) -> InputError:
    """The error for an entry that could not be read, whichever engine read it (EINVAL: it was replaced
    by a fifo, a device or a folder while it was read)."""
    why = NOT_A_FILE if err == errno.EINVAL else os.strerror(err)
    return InputError(f"cannot read {entry.rel} of the build context ({entry.abspath}): {why}",
                      hint="make it readable, or leave it out with .dockerignore")

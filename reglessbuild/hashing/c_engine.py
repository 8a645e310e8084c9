"""The C engine: the port over reglessbuild/_native (built from reglessbuild/csrc by setup.py).

Its walk lists folders with readdir and asks the ignore module's Skipper about each entry; its hash
stats and reads files on one thread per core (up to 8) with the GIL released, reads the index's packed
memo records in place and makes the InputFiles itself. The failure of one entry comes back as an
OSError naming its path, turned here into the port's error.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from . import statmemo
from .ignore import IgnoreRules, skipper
from .port import Entry, Hashed, InputFile, MemoDir, Progress, StatMemo, unreadable

MAX_THREADS = 8


def cpus() -> int:
    """The cores this process may run on (its affinity), not the machine's count."""
    return len(os.sched_getaffinity(0))


class CEngine:
    """The port in C."""

    name = "c"

    def __init__(self, native: ModuleType) -> None:
        self.native = native

    def walk(self, context: Path, rules: IgnoreRules) -> list[Entry]:
        """Every entry the rules leave in, in the byte order of the paths (Python's order of str,
        unless a name is not UTF-8: then sorted again here)."""
        entries, in_order = self.native.walk(str(context), skipper(rules), Entry)
        if not in_order:
            entries.sort()
        return entries  # type: ignore[no-any-return]

    def hash(self, entries: list[Entry], memo: StatMemo | None, progress: Progress | None) -> Hashed:
        """The per-file loop on min(cores, 8) threads."""
        known: dict[str, Any] = {}  # folder -> its records, packed where the memo keeps them so
        if memo is not None:
            for folder in {e.folder for e in entries}:
                if (m := statmemo.packed_or_records(memo, folder)) is not None:
                    known[folder] = m
        try:
            files, records, read, _opened = self.native.hash(
                entries if type(entries) is list else list(entries), known, time.time_ns(),
                int(statmemo.RACY_SECONDS * 1e9), min(cpus(), MAX_THREADS), InputFile, progress)
        except OSError as exc:
            failed = next((e for e in entries if e.abspath == exc.filename), None)
            if failed is None:
                raise
            raise unreadable(failed, exc.errno or errno.EIO) from None
        return Hashed(files, records, read)

    def encode_files(self, files: Sequence[InputFile]) -> bytes:
        """recipe.encode_files's bytes, made in C."""
        return self.native.section(files if isinstance(files, (list, tuple)) else list(files))  # type: ignore[no-any-return]

    def pack_memo(self, names: MemoDir) -> bytes:
        """statmemo.pack's bytes, made in C."""
        return self.native.pack(names)  # type: ignore[no-any-return]

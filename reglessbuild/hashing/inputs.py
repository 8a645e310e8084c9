"""The input files of an artifact and its workspace hash, through the chosen engine: what run.py,
explain.py and the commands use of this package (the names they import are re-exported here)."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from .. import witness
from ..dockerfile import Analysis
from ..errors import InputError
from .choose import engine
from .ignore import IgnoreRules
from .port import Entry, Hashed, InputFile, MemoDir, Progress, StatKey, StatMemo
from .recipe import RECIPE, Inputs, Settings, settings_hasher
from .sources import Listing, select
from .statmemo import LayeredMemo, merge_records

__all__ = ["RECIPE", "Entry", "Hashed", "IgnoreRules", "InputFile", "Inputs", "LayeredMemo", "MemoDir", "Progress",
           "Settings", "StatKey", "StatMemo", "collect", "hash_files", "merge_records", "walk", "workspace_hash"]

_Entry = Entry  # the name run.py's annotation uses
Walked = dict[tuple[Path, tuple[str, ...]], list[Entry]]  # context listings shared by a run's artifacts


def walk(context: Path, rules: IgnoreRules) -> list[Entry]:
    """Every entry of the context that .dockerignore leaves in, sorted by path."""
    try:
        entries = engine().walk(context, rules)
    except OSError as exc:
        raise InputError(f"cannot list the folder {exc.filename or context} of the build context: "
                         f"{exc.strerror}", hint="make it readable, or leave it out with .dockerignore") from None
    if (w := witness.current()) is not None:
        if any(p.startswith("!") for p in rules.patterns):
            w.spoil("its ignore rules have exceptions: the walk looks into folders it leaves out")
        w.listed.add(os.path.abspath(context))
        w.listed.update(e.abspath for e in entries if e.kind == "dir")
    return entries


def hash_files(entries: list[Entry], memo: StatMemo | None, *, progress: Progress | None = None) -> Hashed:
    """Hash each entry; returns the files, new memo records (by folder), and bytes read."""
    if (w := witness.current()) is not None:
        w.inputs.update(e.abspath for e in entries)
    return engine().hash(entries, memo, progress)


def workspace_hash(settings: Settings, files: Sequence[InputFile]) -> str:
    """The artifact's hash (recipe.py says what it takes in)."""
    h = settings_hasher(settings)
    h.update(engine().encode_files(files))
    return h.hexdigest()


def collect(context: Path, dockerfile: Path, analysis: Analysis, rules: IgnoreRules,
            memo: StatMemo | None, progress: Progress | None = None, walked: Walked | None = None) -> Hashed:
    """The input files of one artifact, hashed. `walked` shares context listings between the artifacts of a run."""
    with _no_gc():
        if not analysis.sources:
            entries: list[Entry] = []
        elif walked is None:
            entries = walk(context, rules)
        else:
            key = (context, rules.patterns)
            if key not in walked:
                walked[key] = Listing(walk(context, rules))
            entries = walked[key]
        picked = select(entries, analysis.sources, str(dockerfile), context)
        return hash_files(picked, memo, progress=progress)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Listing 100,000 files makes 100,000 objects, none of them cyclic: without this, the cycle
    collector runs again and again over a growing heap (docs/performance.md)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()

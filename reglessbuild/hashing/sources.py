"""Which entries of a context's listing a Dockerfile's COPY/ADD sources reach."""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path

from e2b_dockerfile_utils import PatternMatcher

from ..dockerfile import Source
from ..errors import DockerfileError
from .globs import GLOB_CHARS, source_regex
from .port import Entry


class Listing(list[Entry]):
    """A context's listing shared by the artifacts of a run (collect's `walked`), with select's lookups
    by path made once for all of them rather than once per artifact."""

    @cached_property
    def by_rel(self) -> dict[str, Entry]:
        """The entries by path."""
        return {e.rel: e for e in self}

    @cached_property
    def rels(self) -> list[str]:
        """The paths, sorted as the entries are."""
        return [e.rel for e in self]


def _below(keys: list[str], entries: Sequence[Entry], root: str) -> Sequence[Entry]:
    """Entries strictly below `root`: paths that share a prefix are one run of the sorted keys, from
    `root/` up to `root0` ("0" follows "/"), so the run is one slice."""
    return entries[bisect.bisect_left(keys, root + "/"):bisect.bisect_left(keys, root + "0")]


def _follow(context: Path, entry: Entry, src: Source, dockerfile: str) -> str:
    """A source that is itself a symlink is followed, as Docker does; it must stay inside the context."""
    real = os.path.realpath(entry.abspath)
    base = os.path.realpath(context)
    if real != base and not real.startswith(base + os.sep):
        raise DockerfileError(f"{src.instruction} source {src.pattern!r} is a symlink to "
                              f"{os.readlink(entry.abspath)!r}, outside the build context",
                              path=dockerfile, line=src.line, hint="a build can only read files inside its context")
    return os.path.relpath(real, base).replace(os.sep, "/")


def select(entries: Sequence[Entry], sources: Iterable[Source], dockerfile: str, context: Path | None = None
           ) -> list[Entry]:
    """The files and symlinks that the sources reach (directories recursively, --exclude applied)."""
    sources = list(sources)
    if all(src.pattern == "." and not src.excludes for src in sources):  # `COPY . /x`: no lookups needed
        return [e for e in entries if e.kind != "dir"] if sources else []
    chosen: dict[str, Entry] = {}
    index = entries.by_rel if isinstance(entries, Listing) else {e.rel: e for e in entries}
    keys = entries.rels if isinstance(entries, Listing) else [e.rel for e in entries]
    for src in sources:
        excluded = PatternMatcher(list(src.excludes)) if src.excludes else None
        if src.pattern == ".":
            # the whole context: every entry, including those below a folder that .dockerignore
            # excludes while an exception re-includes something inside it
            for e in entries:
                if e.kind != "dir" and not (excluded is not None and excluded.matches(e.rel)):
                    chosen[e.rel] = e
            continue
        if GLOB_CHARS.search(src.pattern):
            try:
                rx = source_regex(src.pattern)
            except ValueError as exc:
                raise DockerfileError(str(exc), path=dockerfile, line=src.line) from exc
            roots = [e.rel for e in entries if rx.match(e.rel)]
        else:  # a folder that .dockerignore excludes may still hold re-included entries
            roots = [src.pattern] if src.pattern in index or _below(keys, entries, src.pattern) else []
        if not roots:
            raise DockerfileError(
                f"{src.instruction} source {src.pattern!r} is not in the build context",
                path=dockerfile, line=src.line,
                hint="check the path, and that .dockerignore does not exclude it",
            )
        for root in roots:
            top = index.get(root, Entry(root, "", "dir", "", ""))
            reached = [top, *_below(keys, entries, root)]
            if top.kind == "symlink" and context is not None:
                target = _follow(context, top, src, dockerfile)
                if target in index:
                    reached += [index[target], *_below(keys, entries, target)]
            base = root.rsplit("/", 1)[0] + "/" if "/" in root and top.kind != "dir" else root + "/"
            for e in reached:
                if e.kind == "dir":
                    continue
                if excluded is not None and excluded.matches(e.rel[len(base):] if e.rel.startswith(base) else e.rel):
                    continue
                chosen[e.rel] = e
    return [chosen[k] for k in sorted(chosen)]

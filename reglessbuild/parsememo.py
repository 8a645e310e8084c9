"""Dockerfile analyses kept across runs in the index, so that a restart need not run BuildKit's parser.

An analysis (dockerfile.analyze_text) is a pure function of the Dockerfile's text, the build args, the
target, the platform and the runner's platform, and of the code that computes it. The key is a hash of
all of these, the code included as regless's version and the size and modification time of the modules
that analyse (an edited checkout or an upgraded parser is a new key). Only a successful analysis is
kept: a Dockerfile that fails is parsed again each time, so its error is the parser's own. A record
that does not decode is a miss, never an error.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import xxhash

from . import __version__, dockerfile, platforms
from .dockerfile import Analysis, BaseImage, Source
from .platforms import Platform

if TYPE_CHECKING:
    from .index import Index

FORMAT = 1  # the record's layout below; a change makes every key new
_CODE: tuple[str, ...] = ()


class Store(Protocol):
    """Where the analyses are kept (index.Index: its `parses` table)."""

    def parse_get(self, key: bytes) -> bytes | None:
        """The record kept under `key`, or None."""

    def parse_put(self, key: bytes, record: bytes) -> None:
        """Keep `record` under `key`."""


def _code() -> tuple[str, ...]:
    """The files whose code the analysis runs: regless's Dockerfile and platform modules and the parser."""
    global _CODE
    if not _CODE:
        from e2b_dockerfile_utils import syntax  # already imported by dockerfile.py

        _CODE = (dockerfile.__file__ or "", platforms.__file__ or "", syntax.__file__ or "")
    return _CODE


def key(text: str, build_args: dict[str, str], target: str | None, platform: Platform | None) -> bytes | None:
    """The record's key: a hash of everything the analysis depends on (None: the code's files cannot be
    looked at, e.g. a frozen install, so nothing is kept)."""
    try:
        stamps = [(st.st_size, st.st_mtime_ns) for st in map(os.stat, _code())]
    except OSError:
        return None
    doc = json.dumps([FORMAT, __version__, stamps, text, sorted(build_args.items()), target,
                      None if platform is None else str(platform), str(platforms.host())])
    return xxhash.xxh3_128_digest(doc.encode())


def encode(an: Analysis) -> bytes:
    """The analysis as a record (JSON)."""
    return json.dumps([[[s.pattern, s.line, s.instruction, list(s.excludes)] for s in an.sources],
                       [[b.text, b.line, b.platform] for b in an.bases],
                       list(an.remote), list(an.stages), an.platform_args, list(an.unchecked)]).encode()


def decode(record: bytes) -> Analysis | None:
    """The analysis of a record, or None when it is not one of this format."""
    try:
        sources, bases, remote, stages, platform_args, unchecked = json.loads(record)
        return Analysis(sources=tuple(Source(p, line, ins, tuple(ex)) for p, line, ins, ex in sources),
                        bases=tuple(BaseImage(t, line, plat) for t, line, plat in bases),
                        remote=tuple(remote), stages=tuple(stages), platform_args=bool(platform_args),
                        unchecked=tuple(unchecked))
    except (ValueError, TypeError):
        return None


def analyze(path: Path, store: Store | None, *, build_args: dict[str, str], target: str | None,
            platform: Platform | None = None) -> Analysis:
    """dockerfile.analyze, through the store: a kept analysis when there is one, else a fresh one, kept."""
    if store is None:
        return dockerfile.analyze(path, build_args=build_args, target=target, platform=platform)
    text = dockerfile.read(path)
    k = key(text, build_args, target, platform)
    raw = None if k is None else store.parse_get(k)
    if raw is not None and (kept := decode(raw)) is not None:
        return kept
    an = dockerfile.analyze_text(text, str(path), build_args=build_args, target=target, platform=platform)
    if k is not None:
        store.parse_put(k, encode(an))
    return an


class Batch:
    """A Store over the index that writes what a run adds in one transaction (`flush`), not one a Dockerfile."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self.new: dict[bytes, bytes] = {}

    def parse_get(self, key: bytes) -> bytes | None:
        """The record kept under `key` (this run's or the index's), or None."""
        return self.new.get(key) or self.index.parse_get(key)

    def parse_put(self, key: bytes, record: bytes) -> None:
        """Keep `record` under `key` once flushed."""
        self.new[key] = record

    def flush(self) -> None:
        """Write what this run added (nothing at a restart: no transaction)."""
        if self.new:
            self.index.parses_put(self.new)
            self.new = {}

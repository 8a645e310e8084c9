"""What the workspace hash (xxh3-128) takes in, and in which bytes (DESIGN.md "Workspace hash").

Recipe version, builder kind, Dockerfile bytes, target, platform, build args, required artifacts'
hashes, base image digests, remote ADD sources, and per input file its context-relative POSIX path,
type, executable bit and content hash (a symlink: its target text). It leaves out mtimes, owners,
other permission bits, absolute paths, the image name and the registry.

Each field is its length (u64, little-endian) and its bytes. Hashes are shared between machines and
versions through the registry: these bytes may only change together with RECIPE.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import xxhash

from .port import InputFile

RECIPE = "regless-hash/1"


@dataclass(frozen=True)
class Settings:
    """What an artifact's hash takes in besides its files."""

    builder: str
    dockerfile: bytes
    target: str | None
    platform: str | None
    build_args: tuple[tuple[str, str], ...]
    requires: tuple[tuple[str, str], ...]  # (alias, required artifact's hash)
    bases: tuple[tuple[str, str], ...]  # (FROM text, digest)
    remote: tuple[str, ...]


@dataclass(frozen=True)
class Inputs:
    """An artifact's hashed inputs: what its hash was computed from, and the hash."""

    files: tuple[InputFile, ...]
    settings: Settings
    hash: str
    bytes_read: int  # content bytes hashed (0 when all came from the memo)


def _le(n: int) -> bytes:
    return n.to_bytes(8, "little")


def _field(h: xxhash.xxh3_128, *parts: str | bytes) -> None:
    for p in parts:
        # a str from the environment or argv may hold bytes that are not UTF-8 (as surrogates): hashed as
        # those bytes, which are what the builder gets; UTF-8 text is hashed as before
        b = p.encode("utf-8", "surrogateescape") if isinstance(p, str) else p
        h.update(_le(len(b)))
        h.update(b)


def settings_hasher(settings: Settings) -> xxhash.xxh3_128:
    """A hasher fed with everything but the files, which follow as `encode_files` gives them."""
    h = xxhash.xxh3_128()
    _field(h, RECIPE, "builder", settings.builder, "dockerfile", settings.dockerfile)
    _field(h, "target", settings.target or "", "platform", settings.platform or "")
    for k, v in sorted(settings.build_args):
        _field(h, "arg", k, v)
    for alias, dep in sorted(settings.requires):
        _field(h, "requires", alias, dep)
    for text, digest in sorted(settings.bases):
        _field(h, "base", text, digest)
    for url in settings.remote:
        _field(h, "remote", url)
    return h


_FILE = _le(4) + b"file"
_KIND = {k: _le(len(k)) + k.encode() for k in ("file", "symlink")}
_EXEC = {True: _le(1) + b"x", False: _le(1) + b"-"}


def encode_files(files: Sequence[InputFile]) -> bytes:
    """The files as one buffer: the same bytes as _field(h, "file", path, kind, "x" or "-", digest)
    for each, a path as its bytes on disk (UTF-8, unless a name is not). reglessbuild/csrc/records.c
    makes the same bytes."""
    le = _le
    return b"".join(b"".join((_FILE, le(len(p := os.fsencode(f.path))), p, _KIND[f.kind], _EXEC[f.executable],
                              le(len(d := f.digest.encode())), d)) for f in files)

"""Existence checks and manifest reads over HTTP in this process, the registry tool for everything else.

A check (`IMAGE:HASH` in the registry?) through crane or skopeo starts a Go process per artifact; on a
small runner those starts, not the registry, are most of a restart's check time. `Direct` wraps the
chosen tool and answers `digest` (a HEAD of the manifest) and `manifest` (a GET) itself, through
manifesthttp.ManifestClient, where the answer is plain (that module says when), and hands everything
else to the tool, which has the whole of the registry's protocol. So a direct answer is one the tool
would have given, and nothing can make a missing or stale image look present. An inputs record's push of
an OCI layout (records.py) goes over HTTP too where that is plain (registry/layoutpush.py: the same
requests and bytes as crane's push), as the tool's process was most of a one-file build's end; copies and
pulls always run the tool (`registry.tool` means what it did). REGLESS_DIRECT_CHECKS=0 turns it all off.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..manifesthttp import ACCEPT, MAX_MANIFEST, MODERN, ManifestClient, Unhandled
from ..refs import ImageRef
from .protocol import Registry

__all__ = ["ACCEPT", "MAX_MANIFEST", "MODERN", "OFF_ENV", "Direct", "Unhandled", "enabled"]

OFF_ENV = "REGLESS_DIRECT_CHECKS"


def enabled(env: Mapping[str, str] | None = None) -> bool:
    """Whether checks go to the registry directly: on unless REGLESS_DIRECT_CHECKS is 0, false, no or off."""
    value = (env if env is not None else os.environ).get(OFF_ENV, "1").strip().lower()
    return value not in ("0", "false", "no", "off")


class Direct:
    """The registry tool `inner`, with `digest` and `manifest` answered over HTTP where that is plain
    (see the module's doc) and by `inner` otherwise. `direct` and `fallbacks` count the answers of each."""

    def __init__(self, inner: Registry, *, insecure: Sequence[str] = (), ca_file: Path | None = None,
                 timeout: float = 30.0, env: Mapping[str, str] | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.client = ManifestClient(tool=inner.name, insecure=insecure, ca_file=ca_file, timeout=timeout, env=env)
        self.direct = 0
        self.fallbacks = 0
        self._pushed: dict[tuple[str, str], set[str]] = {}  # blobs push_blobs sent, by (registry, repository)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)  # the tool's own settings (`executable`, `procs`)

    def digest(self, ref: ImageRef) -> str | None:
        """The manifest digest of `ref` from a HEAD (None for a 404), else from the tool."""
        try:
            got = self.client.digest(ref.registry, ref.repository, _reference(ref), ref.digest)
        except Unhandled:
            self.fallbacks += 1
            return self.inner.digest(ref)
        self.direct += 1
        return got

    def manifest(self, ref: ImageRef) -> bytes | None:
        """The manifest bytes of `ref` from a GET (None for a 404), else from the tool."""
        try:
            got = self.client.manifest(ref.registry, ref.repository, _reference(ref), ref.digest)
        except Unhandled:
            self.fallbacks += 1
            return self.inner.manifest(ref)
        self.direct += 1
        return got

    def copy(self, src: ImageRef, dst: ImageRef) -> None:
        """The tool's copy."""
        self.inner.copy(src, dst)

    def push_layout(self, layout: Path, ref: ImageRef, *, index_only: bool = False) -> None:
        """Push an OCI layout's one entry over HTTP (registry/layoutpush.py: an index's manifests that the
        registry lacks with it, `index_only` or not, as crane does), else by the tool (the whole push
        again: a push is idempotent)."""
        from . import layoutpush  # only a build or a retag stores a record

        there = frozenset(self._pushed.get((ref.registry, ref.repository), ()))
        try:
            layoutpush.push(self.client, layout, ref.registry, ref.repository, _reference(ref), there)
        except Unhandled:
            self.fallbacks += 1
            self.inner.push_layout(layout, ref, index_only=index_only)
            return
        self.direct += 1

    def push_blobs(self, layout: Path, ref: ImageRef, digests: list[str]) -> bool:
        """Push these blobs of an OCI layout to `ref`'s repository over HTTP ahead of the push of the
        manifest that names them (records.stage), where that is plain; whether they are there now. The
        tool has no such push: otherwise (False) the later push_layout sends them, as it always did."""
        from . import layoutpush

        try:
            layoutpush.push_blobs(self.client, layout, ref.registry, ref.repository, digests)
        except Unhandled:
            return False
        self._pushed.setdefault((ref.registry, ref.repository), set()).update(digests)
        return True

    def pull_layout(self, ref: ImageRef, layout: Path) -> None:
        """The tool's pull into an OCI layout."""
        self.inner.pull_layout(ref, layout)

    def host_state(self, registry: str) -> tuple[bool, str]:
        """Whether `registry` is answered directly, and if not why (after its ping; for -v and tests)."""
        return self.client.host_state(registry)


def _reference(ref: ImageRef) -> str:
    reference = ref.digest or ref.tag
    if reference is None:
        raise Unhandled("no tag or digest")
    return reference

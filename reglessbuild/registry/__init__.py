"""Registry layer: the port, its adapters, the one factory that picks a tool, and Reliable, the registry
the orchestration talks to (each whole operation retried through retrying.py, copies verified)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .. import proc, retrying
from ..errors import RegistryError, RegistryUnreachable, ReglessError, ToolMissing
from ..faults import TransientRegistryError, is_transient
from ..refs import ImageRef
from .crane import Crane
from .protocol import Registry, RegistryService
from .skopeo import Skopeo

__all__ = ["Choice", "Crane", "Registry", "RegistryService", "Reliable", "Skopeo", "choose", "retried"]

T = TypeVar("T")


@dataclass(frozen=True)
class Choice:
    """The registry tool chosen, and why (shown by `--output json` as registryTool)."""

    registry: Registry
    source: str  # why this tool: "config", "PATH"


def choose(tool: str, *, insecure: tuple[str, ...] = (), ca_file: Path | None = None,
           attempt_timeout: float = 30.0, procs: proc.Processes = proc.LOCAL) -> Choice:
    """crane or skopeo: `tool` from the config, or `auto` = crane when on PATH, else skopeo; its
    subprocesses started through `procs`."""
    if tool == "crane" or (tool == "auto" and shutil.which("crane")):
        if not shutil.which("crane"):
            raise ToolMissing("registry.tool is crane, but crane is not on PATH",
                              hint="install crane, or set registry.tool: skopeo")
        return Choice(Crane(insecure=insecure, ca_file=ca_file, attempt_timeout=attempt_timeout, procs=procs),
                      "config" if tool == "crane" else "PATH (crane found)")
    if not shutil.which("skopeo"):
        raise ToolMissing(
            "neither crane nor skopeo is on PATH" if tool == "auto"
            else "registry.tool is skopeo, but it is not on PATH",
            hint="install skopeo (apt-get install skopeo) or crane (go install "
                 "github.com/google/go-containerregistry/cmd/crane@latest)",
        )
    return Choice(Skopeo(insecure=insecure, ca_file=ca_file, attempt_timeout=attempt_timeout, procs=procs),
                  "config" if tool == "skopeo" else "PATH (no crane, skopeo found)")


def retried(policy: retrying.Policy, fn: Callable[[], T], *, soon_after_midway: bool = True,
            on_retry: retrying.OnRetry | None = None, started: float | None = None) -> T:
    """`fn`, a whole registry operation, retried while it fails transiently (retrying.call); one that
    outlives the deadline is RegistryUnreachable (exit 3). `soon_after_midway` is for operations of many
    requests (a copy): a fault midway is worth a quick new attempt. A check is one or two requests:
    after any fault it backs off, or a registry that answers pings but fails manifests would get an
    attempt every few tens of milliseconds (bin/bench --retries)."""
    try:
        return retrying.call(policy, fn, worth=is_transient, on_retry=on_retry, started=started,
                             midway=(lambda exc: getattr(exc, "midway", False)) if soon_after_midway
                             else retrying.never)
    except TransientRegistryError as exc:
        raise RegistryUnreachable(
            f"registry {exc.registry} did not answer (retried for up to {policy.deadline:g} s): {exc.message}",
            hint=f"check that {exc.registry} is up and reachable; registry.timeout sets how long to retry",
        ) from exc


class Reliable:
    """A Registry with the retry policy around each whole operation, and copies verified: the
    RegistryService that the orchestration, the cache commands and the records are given."""

    def __init__(self, inner: Registry, policy: retrying.Policy) -> None:
        self.inner = inner
        self.policy = policy
        self.name = inner.name
        self.index_children: bool = getattr(inner, "index_children", False)  # records.store: one push or two
        self.calls = 0
        self.on_retry: retrying.OnRetry | None = None  # told of every pause between attempts (the UI shows it)
        # told of every answer (the reference and the digest found, None: not there) and of every write
        # (digest "write"): the reads a restart's replay checks again (witness.py)
        self.on_answer: Callable[[ImageRef, str | None], None] | None = None

    def digest(self, ref: ImageRef, *, started: float | None = None) -> str | None:
        """The manifest digest of `ref` (None: not there), retried; `started` as in retrying.call."""
        self.calls += 1
        got = retried(self.policy, lambda: self.inner.digest(ref), soon_after_midway=False,
                      on_retry=self.on_retry, started=started)
        if self.on_answer is not None:
            self.on_answer(ref, got)
        return got

    def manifest(self, ref: ImageRef) -> bytes | None:
        """The manifest of `ref` as the registry serves it (None: not there), retried."""
        self.calls += 1
        got = retried(self.policy, lambda: self.inner.manifest(ref), soon_after_midway=False,
                      on_retry=self.on_retry)
        if self.on_answer is not None:
            import hashlib  # a restart reads no manifest

            self.on_answer(ref, None if got is None else "sha256:" + hashlib.sha256(got).hexdigest())
        return got

    def push_layout(self, layout: Path, ref: ImageRef, *, index_only: bool = False) -> None:
        """Push an OCI layout's one entry to `ref` (records.py), retried."""
        self.calls += 1
        if self.on_answer is not None:
            self.on_answer(ref, "write")
        retried(self.policy, lambda: self.inner.push_layout(layout, ref, index_only=index_only))

    def push_blobs(self, layout: Path, ref: ImageRef, digests: list[str]) -> bool:
        """Push these blobs of an OCI layout to `ref`'s repository ahead of its manifest's push, where the
        registry is answered in this process (direct.Direct.push_blobs); whether they are there now. One
        attempt, no retries: it is only a head start, and push_layout sends whatever is missing."""
        push = getattr(self.inner, "push_blobs", None)
        if push is None:
            return False
        self.calls += 1
        if self.on_answer is not None:
            self.on_answer(ref, "write")
        try:
            return bool(push(layout, ref, digests))
        except (ReglessError, OSError):
            return False

    def pull_layout(self, ref: ImageRef, layout: Path) -> None:
        """Pull `ref` into an OCI layout (records.py), retried, each attempt into an empty folder."""
        self.calls += 1
        if self.on_answer is not None:
            self.on_answer(ref, "pull")

        def once() -> None:
            shutil.rmtree(layout, ignore_errors=True)  # an attempt that failed midway leaves a partial layout
            self.inner.pull_layout(ref, layout)

        retried(self.policy, once)

    def copy(self, src: ImageRef, dst: ImageRef) -> str:
        """Copy, then check that `dst` now carries the source's digest; returns it. The source's check,
        the copy and the check of `dst` are one operation under one deadline (retrying.call's `started`)."""
        started = time.monotonic()
        want = src.digest or self.digest(src, started=started)
        if want is None:
            raise RegistryError(f"cannot copy {src}: it is not in the registry")
        self.calls += 1
        if self.on_answer is not None:
            self.on_answer(dst, "write")
        retried(self.policy, lambda: self.inner.copy(src, dst), on_retry=self.on_retry, started=started)
        got = self.digest(dst.with_tag(dst.tag) if dst.tag else dst, started=started)
        if got != want:
            raise RegistryError(f"copy of {src} to {dst} gave digest {got}, expected {want}",
                                hint="the registry changed the manifest; regless never records such a copy")
        return got

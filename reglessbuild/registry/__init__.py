"""Registry layer: the port, its adapters, the retry policy, and the one factory that picks a tool."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import RegistryError, ToolMissing
from ..refs import ImageRef
from . import retry
from .crane import Crane
from .protocol import Registry
from .skopeo import Skopeo

__all__ = ["Choice", "Crane", "Registry", "Reliable", "Skopeo", "choose"]


@dataclass(frozen=True)
class Choice:
    registry: Registry
    source: str  # why this tool: "config", "PATH"


def choose(tool: str, *, insecure: tuple[str, ...] = (), ca_file: Path | None = None,
           attempt_timeout: float = 30.0) -> Choice:
    """crane or skopeo: `tool` from the config, or `auto` = crane when on PATH, else skopeo."""
    opts = dict(insecure=insecure, ca_file=ca_file, attempt_timeout=attempt_timeout)
    if tool == "crane" or (tool == "auto" and shutil.which("crane")):
        if not shutil.which("crane"):
            raise ToolMissing("registry.tool is crane, but crane is not on PATH",
                              hint="install crane, or set registry.tool: skopeo")
        return Choice(Crane(**opts), "config" if tool == "crane" else "PATH (crane found)")  # type: ignore[arg-type]
    if not shutil.which("skopeo"):
        raise ToolMissing(
            "neither crane nor skopeo is on PATH" if tool == "auto" else "registry.tool is skopeo, but it is not on PATH",
            hint="install skopeo (apt-get install skopeo) or crane (go install "
                 "github.com/google/go-containerregistry/cmd/crane@latest)",
        )
    return Choice(Skopeo(**opts), "config" if tool == "skopeo" else "PATH (no crane, skopeo found)")  # type: ignore[arg-type]


class Reliable:
    """A Registry with the retry policy around each whole operation, and copies verified."""

    def __init__(self, inner: Registry, policy: retry.Policy) -> None:
        self.inner = inner
        self.policy = policy
        self.name = inner.name
        self.calls = 0
        self.on_retry: retry.OnRetry | None = None  # told of every pause between attempts (the UI shows it)

    def digest(self, ref: ImageRef) -> str | None:
        self.calls += 1
        return retry.call(self.policy, lambda: self.inner.digest(ref), soon_after_midway=False,
                          on_retry=self.on_retry)

    def manifest(self, ref: ImageRef) -> bytes | None:
        self.calls += 1
        return retry.call(self.policy, lambda: self.inner.manifest(ref), soon_after_midway=False)  # type: ignore[attr-defined]

    def push_layout(self, layout: Path, ref: ImageRef, *, index_only: bool = False) -> None:
        self.calls += 1
        retry.call(self.policy, lambda: self.inner.push_layout(layout, ref, index_only=index_only))  # type: ignore[attr-defined]

    def pull_layout(self, ref: ImageRef, layout: Path) -> None:
        self.calls += 1

        def once() -> None:
            shutil.rmtree(layout, ignore_errors=True)  # an attempt that failed midway leaves a partial layout
            self.inner.pull_layout(ref, layout)  # type: ignore[attr-defined]

        retry.call(self.policy, once)

    def copy(self, src: ImageRef, dst: ImageRef) -> str:
        """Copy, then check that `dst` now carries the source's digest; returns it."""
        want = src.digest or self.digest(src)
        if want is None:
            raise RegistryError(f"cannot copy {src}: it is not in the registry")
        self.calls += 1
        retry.call(self.policy, lambda: self.inner.copy(src, dst), on_retry=self.on_retry)
        got = self.digest(dst.with_tag(dst.tag) if dst.tag else dst)
        if got != want:
            raise RegistryError(f"copy of {src} to {dst} gave digest {got}, expected {want}",
                                hint="the registry changed the manifest; regless never records such a copy")
        return got

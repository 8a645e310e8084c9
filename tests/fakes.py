"""IN-MEMORY FAKES of the registry and the builder, for fast tests of the orchestration (run.py).

They are not doubles of a tool (they speak no tool's texts): they stand in for the RegistryService
port (registry/protocol.py: digest, a verified copy), the Builder port (build -> digest) and the
subprocess seam (proc.Processes: only what a cancel calls) so that the Runner's own logic (order under
`requires`, the concurrency limit, failure isolation, the retag choice, recording only after a
verified push, cancel) is tested without buildah or a registry process. The end-to-end tests with the
real tools cover the adapters.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reglessbuild.builders import BuildRequest
from reglessbuild.errors import BuildError, RegistryError
from reglessbuild.proc import Completed
from reglessbuild.refs import ImageRef


def fake_digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass
class FakeRegistry:
    """Tags and digests by full reference, in memory. `lose` names repositories whose pushes the
    registry then does not serve (to test that regless believes no push it has not checked);
    `refuse_copies` names repositories a copy into fails with a RegistryError."""

    name: str = "fake"
    tags: dict[str, str] = field(default_factory=dict)  # "registry/repo:tag" -> digest
    calls: int = 0
    copies: list[tuple[str, str]] = field(default_factory=list)
    lose: set[str] = field(default_factory=set)
    refuse_copies: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def drop(self, repository: str) -> None:
        """Delete every tag of `repository` (an image removed from the registry)."""
        with self._lock:
            self.tags = {k: v for k, v in self.tags.items() if k.rsplit(":", 1)[0] != repository}

    def put(self, ref: ImageRef, digest: str) -> None:
        with self._lock:
            if str(ref.bare()) not in self.lose:
                self.tags[f"{ref.bare()}:{ref.tag}"] = digest

    def digest(self, ref: ImageRef) -> str | None:
        with self._lock:
            self.calls += 1
            if ref.digest:  # by digest: there when some tag of its repository names it
                bare = str(ref.bare())
                return ref.digest if any(k.rsplit(":", 1)[0] == bare and v == ref.digest
                                         for k, v in self.tags.items()) else None
            return self.tags.get(f"{ref.bare()}:{ref.tag}")

    def copy(self, src: ImageRef, dst: ImageRef) -> str:
        if str(dst.bare()) in self.refuse_copies:
            raise RegistryError(f"fake registry: copy to {dst} refused")
        want = self.digest(src)
        if want is None:
            raise BuildError(f"fake registry: {src} is not there")
        with self._lock:
            self.copies.append((str(src), str(dst)))
        self.put(dst, want)
        return want

    def manifest(self, ref: ImageRef) -> bytes | None:
        """No manifests are kept: records are off in the Runner's tests."""
        return None

    def push_layout(self, layout: Path, ref: ImageRef, *, index_only: bool = False) -> None:
        raise RegistryError("fake registry: no layouts")

    def pull_layout(self, ref: ImageRef, layout: Path) -> None:
        raise RegistryError("fake registry: no layouts")


@dataclass
class FakeProcesses:
    """The subprocess seam without processes: runs nothing, counts the cancels (terminate_all)."""

    terminated: int = 0

    def run(self, argv: Sequence[str], *, env: dict[str, str] | None = None, timeout: float | None = None,
            install_hint: str = "") -> Completed:
        raise AssertionError(f"the Runner started a process: {list(argv)}")

    def stream(self, argv: Sequence[str], on_line: Callable[[str], None], *, env: dict[str, str] | None = None,
               install_hint: str = "", aside: Callable[[str], bool] | None = None) -> Completed:
        raise AssertionError(f"the Runner started a process: {list(argv)}")

    def terminate_all(self, grace: float = 5.0) -> None:
        self.terminated += 1


@dataclass
class FakeBuilder:
    """Builds by writing a digest of the request into the fake registry, after `seconds`. Keeps the order
    of starts and ends and the most builds that ran at once; `fail` names artifacts (repository's last
    part) whose build fails, `interrupt` one whose build is interrupted as by Ctrl-C; `on_start` is
    told of each build as it starts (a test may cancel the run there)."""

    registry: FakeRegistry
    seconds: float = 0.05
    fail: set[str] = field(default_factory=set)
    interrupt: str | None = None
    on_start: Callable[[str], None] | None = None
    name: str = "fake"
    multi_platform: bool = False
    events: list[tuple[str, str]] = field(default_factory=list)  # ("start"|"end", artifact)
    requests: dict[str, BuildRequest] = field(default_factory=dict)
    most_at_once: int = 0
    _running: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def build(self, request: BuildRequest, on_line: Callable[[str], None]) -> str:
        name = request.destination.repository.rsplit("/", 1)[-1]
        with self._lock:
            self._running += 1
            self.most_at_once = max(self.most_at_once, self._running)
            self.events.append(("start", name))
            self.requests[name] = request
        try:
            if self.on_start is not None:
                self.on_start(name)
            on_line(f"building {name}")
            time.sleep(self.seconds)
            if name == self.interrupt:
                raise KeyboardInterrupt
            if name in self.fail:
                raise BuildError(f"fake build of {name} failed", tail=("step 2 failed",))
            digest = fake_digest(f"{request.destination}|{sorted(request.build_args)}")
            self.registry.put(request.destination, digest)
            return digest
        finally:
            with self._lock:
                self._running -= 1
                self.events.append(("end", name))

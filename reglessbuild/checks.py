"""Registry checks started while hashing goes on.

An artifact's check (`IMAGE:HASH` in the registry?) needs only its own hash, so it can start as soon as
that hash is known rather than once every artifact is hashed: the checks' round trips and tool starts
then overlap the hashing of the artifacts after it. pipeline.make starts them from prepare's `on_hashed` and
hands them to facts, which waits for what is still running and asks the rest itself.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import TracebackType

    from .refs import ImageRef
    from .registry.protocol import RegistryService


class EarlyChecks:
    """Checks of IMAGE:HASH, each started when its hash is known (`start`); `started` by artifact name.
    Disabled (`enabled=False`, for --no-cache) it starts none. Leaving the block on an error stops
    waiting for checks still running: the error is what the run reports."""

    def __init__(self, registry: RegistryService, concurrency: int, *, enabled: bool = True) -> None:
        self.registry = registry
        self.enabled = enabled
        self.started: dict[str, Future[str | None]] = {}
        self._pool = ThreadPoolExecutor(max_workers=max(1, concurrency)) if enabled else None

    def start(self, name: str, target: ImageRef) -> None:
        """Start the check of `name`'s IMAGE:HASH (none when disabled)."""
        if self._pool is not None:
            self.started[name] = self._pool.submit(self.registry.digest, target)

    def __enter__(self) -> EarlyChecks:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=kind is None, cancel_futures=kind is not None)

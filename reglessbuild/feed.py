"""The artifacts of a build handed to the Runner as each is decided, while the others are still hashed.

A build need not wait for every artifact's hash and check before it starts the first build: an
artifact's decision needs only its own hash, its own check and its index entry. pipeline.py hashes on the
caller's thread and puts each artifact here as soon as its hash is known, with the way to decide it (its
check, already started); the Runner takes them on its own thread and starts each one's act once all it
requires is done. So a build whose changed artifact is hashed early overlaps the hashing of the rest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from .plan import Decision
    from .prepared import Prepared

# a decision made already (a plan carried out), or the call that makes it (it may wait for the check)
Decides = Union["Decision", Callable[[], "Decision"]]


class Feed:
    """Artifacts in dependency order (`put`) until `close`; `take` hands over what came since the last
    take, and a future that is done once more comes (or the feed is closed). Closed with an `error` (bad
    input found while hashing, a cancel), the Runner starts nothing more."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[Prepared, Decides]] = []
        self._more: Future[None] = Future()
        self.closed = False
        self.error: BaseException | None = None

    def put(self, p: Prepared, decides: Decides) -> None:
        """Hand `p` over, with its decision or the call that makes it."""
        with self._lock:
            self._items.append((p, decides))
            self._wake()

    def close(self, error: BaseException | None = None) -> None:
        """No more artifacts; with `error`, none of those not started yet is to start."""
        with self._lock:
            self.closed = True
            if error is not None and self.error is None:
                self.error = error
            self._wake()

    def take(self) -> tuple[list[tuple[Prepared, Decides]], Future[None], bool]:
        """What came since the last take; the future to wait on for more (done once something comes); and
        whether the feed was closed by then (nothing more will come)."""
        with self._lock:
            items, self._items = self._items, []
            if self._more.done() and not self.closed:
                self._more = Future()
            return items, self._more, self.closed

    def _wake(self) -> None:
        if not self._more.done():
            self._more.set_result(None)

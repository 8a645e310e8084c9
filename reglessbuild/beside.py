"""A call beside the one under way: started on a thread of its own when there is time for it, its answer
taken where it is needed. The Runner works out why an artifact is built, and encodes its inputs record,
while the artifact's builder runs, without delaying the builder's start (runner.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Beside(Generic[T]):
    """A call made on a thread of its own once `start` is called (the first call only), its answer taken with
    `result` (which makes the call there, on the caller's thread, if nothing started it), its errors raised
    there as if it had run on the caller's thread."""

    def __init__(self, fn: Callable[[], T], name: str) -> None:
        self.fn = fn
        self.name = name
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._out: list[T] = []
        self._failed: list[BaseException] = []

    def _work(self) -> None:
        try:
            self._out.append(self.fn())
        except BaseException as exc:  # handed to result()'s caller
            self._failed.append(exc)

    def start(self) -> None:
        """Start the call on its thread, unless it was started already."""
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._thread.start()

    def result(self) -> T:
        """The call's answer, once it is done (made here if it was never started)."""
        with self._lock:
            thread = self._thread
            if thread is None:
                self._thread = threading.current_thread()  # started no more: made below
        if thread is None:
            self._work()
        else:
            thread.join()
        if self._failed:
            raise self._failed[0]
        return self._out[0]

"""Waiting in the registry for an image another CI job builds (`regless build --share K/N`).

A share that requires an artifact of another share does not build it: it polls `IMAGE:HASH` (a manifest
HEAD with crane, a GET with skopeo; each poll is a check retried through transient faults as any other)
with backoff, until the image is there or `--wait-timeout` has passed. No server and no lock: the
registry is where the jobs meet, and two jobs building the same hash is safe (run.py takes the digest
the registry serves).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import RegistryError
from .events import Event, Sink
from .refs import ImageRef

DEFAULT_TIMEOUT = 30 * 60.0


class WaitTimeout(RegistryError):
    """An artifact another share builds never appeared in the registry: exit 3, naming it."""

    code = "shareTimedOut"


@dataclass(frozen=True)
class Selection:
    """What one share does: the artifacts it keeps (its own and what they require) and, of those, the
    ones another share builds, with that share's label (`2/3`): they are waited for, never built."""

    keep: frozenset[str]
    wait: dict[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class Pace:
    """How often wait_for polls the registry: doubling pauses from `initial` up to `maximum`, so a short wait
    is noticed soon and a long one does not hammer the registry."""

    initial: float = 1.0  # seconds before the second poll
    maximum: float = 10.0  # the longest pause between polls


def wait_for(digest: Callable[[ImageRef], str | None], ref: ImageRef, name: str, label: str, *,
             timeout: float, emit: Sink, pace: Pace = Pace(),
             clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> str:
    """The digest of `ref` once the registry serves it; polls with doubling pauses (jittered, capped),
    emitting a `wait` event before each pause; WaitTimeout when `timeout` seconds pass without it."""
    start = clock()
    pause = pace.initial
    while True:
        found = digest(ref)
        waited = clock() - start
        if found is not None:
            if waited > 0:
                emit(Event("wait", None, f"{name} is in the registry after {waited:.0f}s (share {label})",
                           {"artifact": name, "seconds": waited}))
            return found
        left = timeout - waited
        if left <= 0:
            raise WaitTimeout(f"{name} ({ref}), built by share {label}, did not appear in the registry within "
                              f"{_duration(timeout)}",
                              hint=f"see share {label}'s job: it failed or has not run; --wait-timeout sets how "
                                   "long a share waits")
        emit(Event("wait", None, f"waiting for {name} (share {label}) {waited:.0f}s",
                   {"artifact": name, "seconds": waited}))
        sleep(min(left, pause * random.uniform(0.8, 1.0)))
        pause = min(pace.maximum, pause * 2)


def _duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:g} s"

"""Retries of whole registry operations within a total deadline: soon after a fault midway through an
operation (errors.midway), otherwise exponential backoff with jitter.

Waiting is never silent: before each pause the caller's `on_retry` gets a Notice (what failed, when
the next attempt comes); the core prints nothing, the user interface turns notices into lines."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, TypeVar

from ..errors import RegistryUnreachable
from .errors import TransientRegistryError, is_transient, short_cause

if TYPE_CHECKING:  # imported when an operation first fails: a run whose calls all succeed never needs it
    import tenacity

T = TypeVar("T")


@dataclass(frozen=True)
class Policy:
    deadline: float = 60.0  # seconds for all attempts of one operation
    initial: float = 0.5
    maximum: float = 4.0
    soon: float = 0.25  # the longest wait after a fault midway through an operation (errors.midway)


@dataclass(frozen=True)
class Notice:
    """An attempt that failed and will be made again: what failed, and when the next attempt comes."""

    registry: str  # host[:port]
    error: str  # the cause in a few words: "connection refused", "503 Service Unavailable"
    attempt: int  # the attempt that failed, from 1
    wait: float  # seconds until the next attempt
    elapsed: float  # seconds since the first attempt
    deadline: float  # seconds all attempts may take


OnRetry = Callable[[Notice], None]


def notice(state: tenacity.RetryCallState, policy: Policy) -> Notice:
    """The Notice of the attempt that just failed, from tenacity's state before its pause."""
    exc = state.outcome.exception() if state.outcome is not None else None
    return Notice(registry=str(getattr(exc, "registry", "") or "?"), error=short_cause(str(exc or "")),
                  attempt=state.attempt_number, wait=state.next_action.sleep if state.next_action else 0.0,
                  elapsed=state.seconds_since_start or 0.0, deadline=policy.deadline)


def wait(policy: Policy, midway: Callable[[BaseException], bool]) -> Callable[[tenacity.RetryCallState], float]:
    """The wait before the next attempt of one operation. After a fault midway (the registry had
    answered: see errors.midway) a short random wait. Otherwise exponential backoff with jitter,
    counted over the faults since the last one midway: a registry that is down or refuses at first
    contact gets longer and longer pauses, while a flaky one that fails a ping now and then does not.
    A registry that said how long to wait (Retry-After, read by errors.retry_after) gets at least
    that, up to what is left of the deadline: a longer wait ends the retries there."""
    streak = 0

    def next_wait(state: tenacity.RetryCallState) -> float:
        nonlocal streak
        exc = state.outcome.exception() if state.outcome is not None else None
        if exc is not None and midway(exc):
            streak = 0
            pause = random.uniform(0.0, policy.soon)
        else:
            streak += 1
            pause = min(policy.maximum, policy.initial * 2 ** (streak - 1) + random.uniform(0.0, policy.initial))
        asked = getattr(exc, "retry_after", None)
        if asked:
            left = policy.deadline - (state.seconds_since_start or 0.0)
            pause = max(pause, min(float(asked), left))
        return pause

    return next_wait


def retrying(policy: Policy, worth: Callable[[BaseException], bool], midway: Callable[[BaseException], bool],
             on_retry: OnRetry | None = None) -> tenacity.Retrying:
    """Attempts while they fail with an exception `worth` another try, paced by `wait`, none started
    past the deadline; the last exception is raised again. `on_retry` hears of each pause before it."""
    import tenacity

    before = (lambda state: on_retry(notice(state, policy))) if on_retry else None
    return tenacity.Retrying(retry=tenacity.retry_if_exception(worth), wait=wait(policy, midway),
                             stop=tenacity.stop_before_delay(policy.deadline), reraise=True,
                             before_sleep=before)


def call(policy: Policy, fn: Callable[[], T], *, soon_after_midway: bool = True,
         on_retry: OnRetry | None = None) -> T:
    """`fn` retried while it fails transiently, within the policy's deadline. `soon_after_midway` is for
    operations of many requests (a copy): a fault midway is worth a quick new attempt. A check is one or
    two requests: after any fault it backs off, or a registry that answers pings but fails manifests
    would get an attempt every few tens of milliseconds (bin/bench --retries).

    The first attempt runs here; only when it fails transiently do the retries begin, with that
    failure handed to them as their own first attempt's and the deadline counted from its start, so
    pacing, deadline and notices are as if they had made it."""
    start = time.monotonic()
    try:
        return fn()
    except TransientRegistryError as exc:
        first: TransientRegistryError | None = exc
    spent = time.monotonic() - start
    rest = replace(policy, deadline=policy.deadline - spent)

    def attempt() -> T:
        nonlocal first
        if first is not None:
            exc, first = first, None
            raise exc
        return fn()

    def told(n: Notice) -> None:
        assert on_retry is not None
        on_retry(replace(n, elapsed=n.elapsed + spent, deadline=policy.deadline))

    try:
        return retrying(rest, is_transient, lambda exc: soon_after_midway and getattr(exc, "midway", False),
                        told if on_retry else None)(attempt)
    except TransientRegistryError as exc:
        raise RegistryUnreachable(
            f"registry {exc.registry} did not answer (retried for up to {policy.deadline:g} s): {exc.message}",
            hint=f"check that {exc.registry} is up and reachable; registry.timeout sets how long to retry",
        ) from exc

"""The one retry layer of regless: attempts of a whole tool call within one deadline, and their pacing.

Registry adapters (through registry.Reliable) and builders (buildah's push and pull reruns) both retry
through this module and import neither each other nor anything of the other's layer; what a failure
means (transient? midway? a Retry-After?) is read by faults.py, which both share too.

Who retries what (docs/registry-retries.md draws it with the measured costs):

- The tools retry single HTTP requests, and regless cannot turn that off: crane tries each request 3
  times on a 5xx or a reset (a check's HEAD falls back to a GET, tried 3 times again); containers/image
  (skopeo, buildah) tries a request without a body up to 5 times on a 429, waiting as Retry-After says;
  buildah runs a whole push or pull copy up to 4 times (`--retry` does not lower that), `--retry-delay`
  apart; kaniko pushes with `--push-retry=3` and regless adds nothing around kaniko. The checks that
  registry/direct.py makes over HTTP in regless's process retry nothing: what they do not plainly
  answer (200 or 404) goes to the tool.
- regless retries whole operations here, never a single request: a check, a retag's copy, a records
  push or pull (registry.Reliable), a buildah build whose base pull failed and a buildah push
  (builders/buildah.py), and only while the tool's final error is transient (faults.is_transient). A
  retag is one operation under one deadline: the source's check, the copy and the check of the copy
  share it (`call`'s `started`), so a retag never retries for three deadlines in a row.
- No attempt starts past the deadline (`Policy.deadline`, registry.timeout); waits grow with jitter
  from `initial` to `maximum` while a registry fails at first contact, are short (at most `soon`)
  after a fault midway through a copy or push, and are never shorter than a Retry-After the tool's log
  showed (capped by what is left of the deadline).

Waiting is never silent: before each pause the caller's `on_retry` gets a Notice (what failed, when
the next attempt comes); the core prints nothing, the user interface turns notices into lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeVar

from .faults import short_cause

if TYPE_CHECKING:  # imported when an operation first fails: a run whose calls all succeed never needs them
    import tenacity

    from .retrynotice import Notice as Notice

T = TypeVar("T")

Predicate = Callable[[BaseException], bool]


@dataclass(frozen=True)
class Policy:
    """How long one operation may be retried and how its waits grow (seconds)."""

    deadline: float = 60.0  # for all attempts of one operation
    initial: float = 0.5
    maximum: float = 4.0
    soon: float = 0.25  # the longest wait after a fault midway through an operation (faults.midway)


OnRetry = Callable[["Notice"], None]


def notice(state: tenacity.RetryCallState, policy: Policy) -> Notice:
    """The Notice of the attempt that just failed, from tenacity's state before its pause."""
    from .retrynotice import Notice

    exc = state.outcome.exception() if state.outcome is not None else None
    return Notice(registry=str(getattr(exc, "registry", "") or "?"), error=short_cause(str(exc or "")),
                  attempt=state.attempt_number, wait=state.next_action.sleep if state.next_action else 0.0,
                  elapsed=state.seconds_since_start or 0.0, deadline=policy.deadline)


def wait(policy: Policy, midway: Predicate) -> Callable[[tenacity.RetryCallState], float]:
    """The wait before the next attempt of one operation. After a fault midway (the registry had
    answered: see faults.midway) a short random wait. Otherwise exponential backoff with jitter,
    counted over the faults since the last one midway: a registry that is down or refuses at first
    contact gets longer and longer pauses, while a flaky one that fails a ping now and then does not.
    A registry that said how long to wait (an exception's `retry_after`, read by faults.retry_after)
    gets at least that, up to what is left of the deadline: a longer wait ends the retries there."""
    import random  # only once an operation failed: a run whose calls all succeed never needs it

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


def retrying(policy: Policy, worth: Predicate, midway: Predicate, on_retry: OnRetry | None = None
             ) -> tenacity.Retrying:
    """Attempts while they fail with an exception `worth` another try, paced by `wait`, none started
    past the deadline; the last exception is raised again. `on_retry` hears of each pause before it."""
    import tenacity

    before = (lambda state: on_retry(notice(state, policy))) if on_retry else None
    return tenacity.Retrying(retry=tenacity.retry_if_exception(worth), wait=wait(policy, midway),
                             stop=tenacity.stop_before_delay(policy.deadline), reraise=True,
                             before_sleep=before)


def never(exc: BaseException) -> bool:
    """A `midway` for operations that always back off (a check: one or two requests)."""
    return False


def call(policy: Policy, fn: Callable[[], T], *, worth: Predicate, midway: Predicate = never,
         on_retry: OnRetry | None = None, started: float | None = None) -> T:
    """`fn` attempted again while it fails with an exception `worth` another try, within the policy's
    deadline; the last such exception is raised when the deadline ends the attempts.

    The first attempt runs here, before tenacity is imported; only when it fails are retries set up,
    with that failure handed to them as their own first attempt's and the deadline counted from its
    start, so pacing, deadline and notices are as if they had made it. `started` (a time.monotonic()
    reading) counts the deadline from an earlier moment instead: one operation made of several calls
    (a retag: check, copy, check) shares one deadline."""
    start = time.monotonic() if started is None else started
    try:
        return fn()
    except BaseException as exc:
        if not worth(exc):
            raise
        first: BaseException | None = exc
    import tenacity  # noqa: F401 - before the time spent is read: its import is part of the deadline, not after it

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

    return retrying(rest, worth, midway, told if on_retry else None)(attempt)

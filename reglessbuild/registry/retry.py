"""Retries of whole registry operations: exponential backoff with jitter, within a total deadline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

import tenacity

from ..errors import RegistryUnreachable
from .errors import TransientRegistryError, is_transient

T = TypeVar("T")


@dataclass(frozen=True)
class Policy:
    deadline: float = 60.0  # seconds for all attempts of one operation
    initial: float = 0.5
    maximum: float = 4.0


def call(policy: Policy, fn: Callable[[], T]) -> T:
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        wait=tenacity.wait_exponential_jitter(multiplier=policy.initial, max=policy.maximum, jitter=policy.initial),
        stop=tenacity.stop_before_delay(policy.deadline),
        reraise=True,
    )
    try:
        return retrying(fn)
    except TransientRegistryError as exc:
        raise RegistryUnreachable(
            f"registry {exc.registry} did not answer (retried for up to {policy.deadline:g} s): {exc.message}",
            hint=f"check that {exc.registry} is up and reachable; registry.timeout sets how long to retry",
        ) from exc

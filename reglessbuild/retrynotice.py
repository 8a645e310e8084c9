"""A Notice: an attempt that failed and will be made again (retrying.py tells its caller's `on_retry`).

A module of its own, imported by retrying.notice once an operation has failed: a run whose calls all
succeed, such as a build whose builder is about to start, does not create the class.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Notice:
    """An attempt that failed and will be made again: what failed, and when the next attempt comes."""

    registry: str  # host[:port]
    error: str  # the cause in a few words: "connection refused", "503 Service Unavailable"
    attempt: int  # the attempt that failed, from 1
    wait: float  # seconds until the next attempt
    elapsed: float  # seconds since the operation's first attempt
    deadline: float  # seconds all attempts may take

"""What run.py tells the user interface. The core never prints: it emits these."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Event:
    """One thing the core tells the user interface: what happened, to which artifact, and its data."""

    kind: str  # phase | decision | line | retag | build | push | tag | outcome | warning
    artifact: str | None = None
    message: str = ""
    data: dict[str, object] = field(default_factory=dict)


Sink = Callable[[Event], None]


def discard(_: Event) -> None:
    """A Sink that drops every event (for callers that show nothing)."""
    return None

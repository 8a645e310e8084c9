"""What run.py tells the user interface. The core never prints: it emits these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Event:
    kind: str  # phase | decision | line | retag | build | push | tag | outcome | warning
    artifact: str | None = None
    message: str = ""
    data: dict[str, object] = field(default_factory=dict)


Sink = Callable[[Event], None]


def discard(_: Event) -> None:
    return None

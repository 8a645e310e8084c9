"""The decision for each artifact, as data: a pure function of hash, index entry and registry facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .index import Result
from .refs import ImageRef, parse


class Action(Enum):
    CACHED = "cached"
    RETAG = "retagged"
    BUILD = "build"


@dataclass(frozen=True)
class Facts:
    target: ImageRef  # IMAGE:HASH
    target_digest: str | None  # what the registry says of IMAGE:HASH (None: not there)
    entry: Result | None = None  # the index's record for this hash
    live: dict[str, str | None] = field(default_factory=dict)  # each of entry.refs -> its digest now
    no_cache: bool = False


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    digest: str | None = None  # cached: the digest found; retag: the digest to copy
    source: ImageRef | None = None  # retag: where from
    stale: bool = False  # the index entry points at nothing: drop it


def retag_candidates(target: ImageRef, entry: Result) -> list[str]:
    """The entry's references other than the target, same repository first, then same registry."""
    others = [r for r in entry.refs if r != str(target)]

    def rank(text: str) -> tuple[int, str]:
        ref = parse(text)
        return (0 if ref.name == target.name else 1 if ref.registry == target.registry else 2, text)

    return sorted(others, key=rank)


def decide(f: Facts) -> Decision:
    if f.no_cache:
        return Decision(Action.BUILD, "--no-cache: build everything")
    if f.target_digest is not None:
        return Decision(Action.CACHED, f"found {f.target}", digest=f.target_digest)
    if f.entry is None:
        return Decision(Action.BUILD, "no image for this hash")
    for text in retag_candidates(f.target, f.entry):
        if f.live.get(text) == f.entry.digest:
            return Decision(Action.RETAG, f"from {text} (same inputs)", digest=f.entry.digest,
                            source=parse(text).bare().with_digest(f.entry.digest))
    return Decision(Action.BUILD, "its image is gone from the registry (the index entry is stale)", stale=True)

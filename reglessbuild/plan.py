"""The decision for each artifact, as data: a pure function of hash, index entry and registry facts.

A decision's outcome is the word `build` reports (outcomes.Outcome): a plan says `built` for what
build would build, so plan, build, explain and their JSON share one vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .index import Result
from .outcomes import Outcome, Reason, Why
from .refs import ImageRef, parse


@dataclass(frozen=True)
class Facts:
    """What decide needs to know of one artifact: its IMAGE:HASH, the registry's answer, the index's entry."""

    target: ImageRef  # IMAGE:HASH
    target_digest: str | None  # what the registry says of IMAGE:HASH (None: not there)
    entry: Result | None = None  # the index's record for this hash
    live: dict[str, str | None] = field(default_factory=dict)  # each of entry.refs -> its digest now
    no_cache: bool = False


@dataclass(frozen=True)
class Decision:
    """What build does with one artifact (BUILT, CACHED or RETAGGED) and why."""

    outcome: Outcome
    reason: Reason
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
    """Cached when the registry serves IMAGE:HASH; else retagged from a live reference of the index
    entry that still carries its digest; else built (the entry, if any, is stale)."""
    if f.no_cache:
        return Decision(Outcome.BUILT, Reason(Why.NO_CACHE))
    if f.target_digest is not None:
        return Decision(Outcome.CACHED, Reason(Why.FOUND, reference=str(f.target)), digest=f.target_digest)
    if f.entry is None:
        return Decision(Outcome.BUILT, Reason(Why.NO_IMAGE))
    for text in retag_candidates(f.target, f.entry):
        if f.live.get(text) == f.entry.digest:
            return Decision(Outcome.RETAGGED, Reason(Why.SAME_INPUTS, reference=text), digest=f.entry.digest,
                            source=parse(text).bare().with_digest(f.entry.digest))
    return Decision(Outcome.BUILT, Reason(Why.STALE_ENTRY), stale=True)

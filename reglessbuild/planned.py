"""The Plan: what build would do, every artifact of a run hashed and decided, as one frozen value.

pipeline.make computes it for `plan`, `explain` and --share, which read every decision before acting on
any. A build of every artifact acts on each decision as it comes (pipeline.build) and never makes one, so
the class lives here, imported by make, and is not created while such a build starts its builder.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import plan, run


@dataclass(frozen=True)
class Plan:
    """What build would do: each artifact prepared (hashed) and decided, in dependency order."""

    prepared: tuple[run.Prepared, ...]
    decisions: Mapping[str, plan.Decision]  # by artifact name (read-only)
    phases: Mapping[str, float]  # wall seconds of hash, check and decide

    def decision(self, name: str) -> plan.Decision:
        """The decision for the artifact named `name`."""
        return self.decisions[name]

    def narrowed(self, keep: Iterable[str]) -> Plan:
        """The same plan for the artifacts in `keep` only (--share), in the same order."""
        kept = set(keep)
        return replace(self, prepared=tuple(p for p in self.prepared if p.artifact.name in kept))

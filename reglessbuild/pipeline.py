"""The one pipeline that build, plan and explain share: hash, check, decide, into a frozen Plan.

`make` computes a Plan once: every artifact of the run (the named ones and what they require, in
dependency order) hashed, its IMAGE:HASH checked in the registry (each check started as soon as its
hash is known, checks.py) and decided (plan.decide). `build` carries a Plan out with the Runner;
`plan` and `explain` (cli) read one. `hashed` is the first step alone, for `hash` and `deps`, which
need no decision (and `deps` none of the registry). Nothing here prints: it emits events.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import TYPE_CHECKING

from . import checks, plan, proc, run
from .builders.protocol import Builder
from .config import Project
from .errors import InputError
from .events import Event, Sink
from .index import Index
from .registry.protocol import RegistryService
from .report import ArtifactResult, Report
from .skaffold import inputdigest

if TYPE_CHECKING:  # --share's waits: imported by fanout.py, not by a run of every artifact
    from . import waiting


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


def hashed(project: Project, index: Index, registry: RegistryService, emit: Sink, names: Iterable[str] | None = None, *,
           offline: bool = False, on_hashed: Callable[[run.Prepared], None] | None = None) -> list[run.Prepared]:
    """The named artifacts (all when none) and what they require, hashed in dependency order
    (run.prepare; `offline` resolves no base image)."""
    return run.prepare(project, run.closure(project, names), index, registry, emit, offline=offline,
                       on_hashed=on_hashed)


def make(project: Project, index: Index, registry: RegistryService, emit: Sink, names: Iterable[str] | None = None, *,
         no_cache: bool = False) -> Plan:
    """Hash, check and decide every artifact of the run, once (see the module's docstring)."""
    t0 = time.perf_counter()
    emit(Event("phase", None, "hash"))
    with checks.EarlyChecks(registry, project.registry.concurrency, enabled=not no_cache) as early:
        prepared = hashed(project, index, registry, emit, names,
                          on_hashed=lambda p: early.start(p.artifact.name, p.target))
        prepared = inputdigest.apply(prepared)  # skaffold.yaml's inputDigest tags (the targets stay)
        t1 = time.perf_counter()
        emit(Event("phase", None, "check"))
        facts = run.facts(prepared, index, registry, no_cache=no_cache, concurrency=project.registry.concurrency,
                          started=early.started)
    t2 = time.perf_counter()
    decisions = {name: plan.decide(f) for name, f in facts.items()}
    return Plan(tuple(prepared), MappingProxyType(decisions),
                MappingProxyType({"hash": t1 - t0, "check": t2 - t1, "decide": time.perf_counter() - t2}))


Select = Callable[[list[run.Prepared], dict[str, plan.Decision]], "waiting.Selection"]


def build(project: Project, index: Index, registry: RegistryService, builder: Builder, emit: Sink, *,
          names: Iterable[str] | None = None, no_cache: bool = False, registry_source: str = "",
          builder_source: str = "", select: Select | None = None, procs: proc.Processes = proc.LOCAL,
          after_acts: Callable[[list[ArtifactResult]], None] | None = None) -> Report:
    """Make the plan, then carry it out: retag, build and push in dependency order, and record.
    `select` (--share) narrows the run, once decided, to one share's artifacts and what they require,
    waiting for those another share builds. The registry and the builder are ports (the real ones, or
    tests/fakes.py); `procs` is the subprocess seam a cancel stops tools through. `after_acts` is
    called with the results once every artifact is done, beside the inputs records still being pushed
    (Runner.execute): the caller's end-of-run work, off the run's critical path."""
    several = [a.name for a in run.closure(project, names) if a.platforms]
    if several and not getattr(builder, "multi_platform", False):
        raise InputError(f"{builder.name} builds one platform per run, and {', '.join(several)} "
                         f"list{'s' if len(several) == 1 else ''} several platforms",
                         hint="use builder.kind: buildah for multi-platform images, or give each artifact one platform")
    the_plan = make(project, index, registry, emit, names, no_cache=no_cache)
    t2 = time.perf_counter()
    decisions = dict(the_plan.decisions)
    chosen = select(list(the_plan.prepared), decisions) if select else None  # --share: may wait for others
    if chosen is not None:
        the_plan = the_plan.narrowed(chosen.keep)
    for p in the_plan.prepared:
        d = the_plan.decision(p.artifact.name)
        emit(Event("decision", p.artifact.name, d.outcome.value, {"decision": d}))
    t3 = time.perf_counter()
    runner = run.Runner(project, index, registry, builder, emit, chosen, procs=procs, after_acts=after_acts)
    results = runner.execute(list(the_plan.prepared), decisions)
    # wall seconds of each step (README "Performance": where a restart's time goes); decide is the plan
    # and its events, act the retags, builds, tags and index records (retag, build, record: their shares)
    phases = {"hash": the_plan.phases["hash"], "check": the_plan.phases["check"],
              "decide": the_plan.phases["decide"] + t3 - t2, "act": time.perf_counter() - t3,
              "retag": sum(r.seconds.get("retag", 0.0) for r in results),
              "build": sum(r.seconds.get("build", 0.0) for r in results), "record": runner.record_seconds}
    return Report(tuple(results), phases, registry.name, builder.name, registry.calls, runner.builds_started,
                  registry_source=registry_source, builder_source=builder_source)

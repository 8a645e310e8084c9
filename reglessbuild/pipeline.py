"""The one pipeline that build, plan and explain share: hash, check, decide, into a frozen Plan (planned.py).

`make` computes a Plan once: every artifact of the run (the named ones and what they require, in
dependency order) hashed, its IMAGE:HASH checked in the registry (each check started as soon as its
hash is known, checks.py) and decided (plan.decide); `plan` and `explain` (cli) read one. `build` hands
each artifact to the Runner as soon as it is decided (feed.py), while the rest are still hashed, so that
a changed artifact's build need not wait for every hash; with --share it makes the whole Plan first (a
share is chosen from every decision), then carries it out. `hashed` is the first step alone, for `hash`
and `deps`, which need no decision (and `deps` none of the registry). Nothing here prints: it emits events.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from types import MappingProxyType
from typing import TYPE_CHECKING

from . import checks, plan, proc, run
from .builders.protocol import Builder
from .config import Project
from .errors import InputError
from .events import Event, Sink
from .feed import Feed
from .index import Index
from .registry.protocol import RegistryService
from .report import ArtifactResult, Report

if TYPE_CHECKING:  # --share's waits: imported by fanout.py, not by a run of every artifact
    from . import waiting
    from .planned import Plan


def _input_digests(project: Project) -> bool:
    """Whether an artifact's tag policy is skaffold.yaml's inputDigest: only then is skaffold/inputdigest.py
    imported (a regless.yaml project's build need not load the skaffold package before its builder starts)."""
    return any(a.input_digest is not None for a in project.artifacts)


def _tagger(project: Project) -> Callable[[run.Prepared, dict[str, run.Prepared]], run.Prepared]:
    """inputdigest.tagged for a project with inputDigest tags; else each artifact as it is, which is what
    tagged gives an artifact without one."""
    if not _input_digests(project):
        return lambda p, _earlier: p
    from .skaffold import inputdigest

    return inputdigest.tagged


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
        if _input_digests(project):  # skaffold.yaml's inputDigest tags (the targets stay)
            from .skaffold import inputdigest

            prepared = inputdigest.apply(prepared)
        t1 = time.perf_counter()
        emit(Event("phase", None, "check"))
        facts = run.facts(prepared, index, registry, no_cache=no_cache, concurrency=project.registry.concurrency,
                          started=early.started)
    t2 = time.perf_counter()
    decisions = {name: plan.decide(f) for name, f in facts.items()}
    from .planned import Plan  # only plan, explain and --share make one: a build need not create the class

    return Plan(tuple(prepared), MappingProxyType(decisions),
                MappingProxyType({"hash": t1 - t0, "check": t2 - t1, "decide": time.perf_counter() - t2}))


Select = Callable[[list[run.Prepared], dict[str, plan.Decision]], "waiting.Selection"]


def build(project: Project, index: Index, registry: RegistryService, builder: Builder, emit: Sink, *,
          names: Iterable[str] | None = None, no_cache: bool = False, registry_source: str = "",
          builder_source: str = "", select: Select | None = None, procs: proc.Processes = proc.LOCAL,
          after_acts: Callable[[list[ArtifactResult]], None] | None = None) -> Report:
    """Decide each artifact and carry it out: retag, build and push in dependency order, and record; each
    act starts as soon as its artifact is decided (`_streamed`). `select` (--share) makes the whole plan
    first, then narrows the run to one share's artifacts and what they require,
    waiting for those another share builds. The registry and the builder are ports (the real ones, or
    tests/fakes.py); `procs` is the subprocess seam a cancel stops tools through. `after_acts` is
    called with the results once every artifact is done, beside the inputs records still being pushed
    (Runner.execute): the caller's end-of-run work, off the run's critical path."""
    several = [a.name for a in run.closure(project, names) if a.platforms]
    if several and not getattr(builder, "multi_platform", False):
        raise InputError(f"{builder.name} builds one platform per run, and {', '.join(several)} "
                         f"list{'s' if len(several) == 1 else ''} several platforms",
                         hint="use builder.kind: buildah for multi-platform images, or give each artifact one platform")
    if select is None:
        results, phases, runner = _streamed(project, index, registry, builder, emit, names, no_cache=no_cache,
                                            procs=procs, after_acts=after_acts)
    else:
        results, phases, runner = _planned(project, index, registry, builder, emit, names, no_cache=no_cache,
                                           procs=procs, after_acts=after_acts, select=select)
    phases |= {"retag": sum(r.seconds.get("retag", 0.0) for r in results),
               "build": sum(r.seconds.get("build", 0.0) for r in results), "record": runner.record_seconds}
    return Report(tuple(results), phases, registry.name, builder.name, registry.calls, runner.builds_started,
                  registry_source=registry_source, builder_source=builder_source)


def _planned(project: Project, index: Index, registry: RegistryService, builder: Builder, emit: Sink,
             names: Iterable[str] | None, *, no_cache: bool, procs: proc.Processes,
             after_acts: Callable[[list[ArtifactResult]], None] | None, select: Select
             ) -> tuple[list[ArtifactResult], dict[str, float], run.Runner]:
    """--share: the whole plan first (a share is chosen from every decision), then carried out."""
    the_plan = make(project, index, registry, emit, names, no_cache=no_cache)
    t2 = time.perf_counter()
    decisions = dict(the_plan.decisions)
    chosen = select(list(the_plan.prepared), decisions)  # may wait for others
    the_plan = the_plan.narrowed(chosen.keep)
    for p in the_plan.prepared:
        d = the_plan.decision(p.artifact.name)
        emit(Event("decision", p.artifact.name, d.outcome.value, {"decision": d}))
    t3 = time.perf_counter()
    runner = run.Runner(project, index, registry, builder, emit, chosen, procs=procs, after_acts=after_acts)
    results = runner.execute(list(the_plan.prepared), decisions)
    # wall seconds of each step (README "Performance": where a restart's time goes); decide is the plan
    # and its events, act the retags, builds, tags and index records (retag, build, record: their shares)
    return results, {"hash": the_plan.phases["hash"], "check": the_plan.phases["check"],
                     "decide": the_plan.phases["decide"] + t3 - t2, "act": time.perf_counter() - t3}, runner


def _streamed(project: Project, index: Index, registry: RegistryService, builder: Builder, emit: Sink,
              names: Iterable[str] | None, *, no_cache: bool, procs: proc.Processes,
              after_acts: Callable[[list[ArtifactResult]], None] | None
              ) -> tuple[list[ArtifactResult], dict[str, float], run.Runner]:
    """Each artifact carried out as soon as it is decided (feed.py): hashing goes on here, on the caller's
    thread (an interrupt stops it as it stops a plan), while the Runner acts on its own thread. An error
    while hashing (bad input) or a check the registry failed starts nothing more: what is under way
    finishes and is recorded, then the error is raised. The artifacts are hashed those changed most
    recently first (run.recent_first), each after what it requires. Phases: hash is the hashing's wall time (the acts
    started meanwhile overlap it), check the wait for the checks after it, act the time after both."""
    runner = run.Runner(project, index, registry, builder, emit, None, procs=procs, after_acts=after_acts)
    fed = Feed()
    out: list[list[ArtifactResult]] = []
    failed: list[BaseException] = []
    decided: list[float] = []

    finished = threading.Event()  # waited for, not the thread joined: Python 3.11 takes a thread whose join
    # was interrupted (Ctrl-C) for stopped while it runs, and the run would end before the tools it stops

    def carry() -> None:
        try:
            out.append(runner.carry_out(fed))
        except BaseException as exc:  # raised on the caller's thread below
            failed.append(exc)
        finally:
            finished.set()

    def decides(p: run.Prepared, check: Future[str | None] | None) -> Callable[[], plan.Decision]:
        def decide() -> plan.Decision:
            found = None if check is None else check.result()
            d = plan.decide(run.fact(p, found, index, registry, no_cache=no_cache))
            decided.append(time.perf_counter())
            return d
        return decide

    acts = threading.Thread(target=carry, name="regless-acts")
    earlier: dict[str, run.Prepared] = {}
    tagged = _tagger(project)
    t0 = time.perf_counter()
    emit(Event("phase", None, "hash"))
    acts.start()
    try:
        with checks.EarlyChecks(registry, project.registry.concurrency, enabled=not no_cache) as early:
            def hashed_one(p: run.Prepared) -> None:
                early.start(p.artifact.name, p.target)
                fed.put(tagged(p, earlier), decides(p, early.started.get(p.artifact.name)))

            # the artifacts changed most recently first: a build started early overlaps more of the hashing
            run.prepare(project, run.recent_first(run.closure(project, names), index), index, registry, emit,
                        on_hashed=hashed_one)
            t1 = time.perf_counter()
            emit(Event("phase", None, "check"))
            fed.close()
        checked = time.perf_counter()  # every check answered (leaving the block waits for them)
        finished.wait()
    except BaseException as exc:
        if not isinstance(exc, Exception):
            runner.cancel()  # an interrupt: stop every tool now
        fed.close(error=exc)
        finished.wait()  # the acts under way end (or, cancelled, their tools' output ends)
        raise
    if failed:
        raise failed[0]
    if runner.error is not None:
        raise runner.error
    t2 = max([checked, *decided])
    return out[0], {"hash": t1 - t0, "check": t2 - t1, "decide": 0.0, "act": time.perf_counter() - t2}, runner

"""`regless build`: carry out the plan (pipeline.build) and render its report as text or JSON.

Also what build alone sets up around the pipeline: --share (one CI job's part of the plan), regless's
own buildah storage and the images removed from it at the end of the run, the per-artifact build logs and
--file-output (Skaffold's build output).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import began, buildout, pipeline, proc, replay, report, storage, witness
from .builders import choose as choose_builder
from .buildlog import BuildLogs
from .cachedir import default_cache_dir
from .console import Console
from .errors import InputError
from .events import Event
from .outcomes import Outcome
from .wiring import connect, load_project, writable

if TYPE_CHECKING:
    from .config import Project


def _share(args: argparse.Namespace) -> Callable[..., Any] | None:
    """--share K/N (with --plan FILE, --wait-timeout): how the run is narrowed to one share, or None."""
    if args.share is None:
        if args.plan is not None:
            raise InputError("--plan FILE goes with --share K/N", hint="e.g. --share 1/3 --plan plan.json")
        return None
    from . import cache, fanout, shares

    k_n = shares.parse_share(args.share)
    timeout = cache.parse_duration(args.wait_timeout)
    saved = fanout.load_split(args.plan) if args.plan else None
    if saved is not None:
        fanout.check(k_n, saved)  # before any work
    return lambda prepared, _decisions: fanout.select(k_n, prepared, saved=saved, timeout=timeout)


def _leave(claim: storage.Claim, project: Project, builder: object, r: Console, detach: bool,
           later: list[Callable[[], None]]) -> Callable[[list[report.ArtifactResult]], None]:
    """The run's end for buildah's storage, once every artifact is done (while the inputs records are still
    pushed: pipeline.build's after_acts): this run's built images and the required artifacts it pulled leave
    the storage, or stay for a later run where another run holds it (storage.Claim); `detach` (regless's own
    storage): by a removal left running after the run (storage.Claim.release), started once the records
    are pushed too (put in `later`, which the caller calls then): it would otherwise compete with them for
    the processors, and nothing in the run waits for it."""
    def leave(results: list[report.ArtifactResult]) -> None:
        # what a build of this run pulled for its FROM: required artifacts of those built (a restart pulls none)
        built_now = {x.name for x in results if x.outcome in (Outcome.BUILT, Outcome.FAILED)}
        required = {q.image for a in project.artifacts if a.name in built_now for q in a.requires if q.alias}
        pulled = [f"{x.image}@{x.digest}" for x in results if x.name in required and x.digest]
        built: list[str] = list(getattr(builder, "leftovers", []))  # buildah's names for what it pushed

        def release() -> None:
            if not claim.release([*built, *pulled], project.builder.buildah.storage_driver, detach=detach) and (
                    built or pulled):
                r(Event("note", None, "another regless run uses buildah's storage: this run's images stay in it "
                        "until a run that finds it alone removes them"))
        if detach:
            later.append(release)
        else:
            release()
    return leave


def _collecting_once_hashed(r: Console) -> Callable[[Event], None]:
    """`r`, and the cyclic garbage collector back on (cli.main turned it off for the start) once every
    artifact is hashed (the check phase's event), with what was made before frozen (gc.freeze: kept, never
    walked again): the builds already started, and those to come, wait on processes for the rest of the run."""
    def emit(event: Event) -> None:
        if event.kind == "phase" and event.message == "check" and not gc.isenabled():
            gc.freeze()
            gc.enable()
        r(event)
    return emit


def cmd_build(args: argparse.Namespace, r: Console) -> int:
    """Build and push what changed, skip the rest; the results in the config's order, then the summary."""
    started = time.perf_counter()  # imports and arguments done: startup before, config from here to the pipeline
    writable(args.file_output, "--file-output")
    if args.share is not None:
        from . import cache
        from .shares import parse_share

        parse_share(args.share)  # bad input is refused before any work
        cache.parse_duration(args.wait_timeout)
    project = load_project(args, r)
    if not project.artifacts:
        raise InputError(f"{project.path}: every artifact was left out by --skip-unsupported; nothing to build")
    r.width = max(len(n) for n in (*(a.name for a in project.artifacts), *(s.name for s in project.skipped)))
    r.logs = BuildLogs((args.cache_dir or default_cache_dir()) / "logs")
    claim = None  # held from the first build to the removal below: see storage.Claim
    own = None
    if project.builder.kind == "buildah":
        own = storage.choose(project.builder.buildah.storage_driver)
        # --keep-images removes nothing, but waits as any run for a removal under way (an earlier run's)
        claim = storage.Claim(storage.lock_path(own, args.cache_dir or default_cache_dir()))
        if own.own:  # else CONTAINERS_STORAGE_CONF: the user's choice
            os.environ["CONTAINERS_STORAGE_CONF"] = str(own.conf)
            r(Event("note", None, f"buildah's images go to regless's own storage {own.graph}"
                    + ("" if args.keep_images else "; what it builds leaves at the run's end (--keep-images)")))
    # the claim is taken when the builder first starts buildah (storage.Claiming): a run that builds nothing
    # never waits for an earlier run's removal
    builder = choose_builder(project.builder, push_deadline=project.registry.timeout, keep_images=args.keep_images,
                             procs=storage.Claiming(claim) if claim is not None else proc.LOCAL)
    index, reg, reg_source = connect(args, r, project)
    configured = time.perf_counter()
    later: list[Callable[[], None]] = []  # a detached removal, started once pipeline.build is done (_leave)
    leave = (_leave(claim, project, builder.builder, r, detach=own.own, later=later)
             if claim is not None and own is not None and not args.keep_images else None)
    try:
        try:
            rep = pipeline.build(project, index, reg, builder.builder, _collecting_once_hashed(r),
                                 names=args.artifacts, no_cache=args.no_cache, registry_source=reg_source,
                                 builder_source=builder.source, select=_share(args), after_acts=leave)
        finally:
            for start in later:
                start()
        skipped = tuple(report.ArtifactResult(name=s.name, image=s.name, hash="", outcome=Outcome.SKIPPED,
                                              reason=s.reason) for s in project.skipped)
        rank = {a.name: i for i, a in enumerate(project.artifacts)}
        done = sorted(rep.results, key=lambda x: rank.get(x.name, len(rank)))  # the config's order
        done = [dataclasses.replace(x, log=str(p)) if (p := r.logs.path(x.name)) else x for x in done]
        rep = dataclasses.replace(rep, results=(*done, *skipped), warnings=tuple(r.warnings),
                                  phases={"startup": started - began(), "config": configured - started, **rep.phases})
        order = [a.name for a in project.artifacts]
        if (w := witness.current()) is not None:  # a run that only found its images: kept for a replay
            witness.stop()
            why = replay.save(index, args, w, rep, order, r, project.registry, args.cache_dir or default_cache_dir(),
                              moved=bool(index.moved))
            if why:
                r(Event("note", None, f"this run is not kept for a replay: {why}"))
    finally:
        index.close()
    if claim is not None:
        claim.close()
    return buildout.render(rep, args, r, order)

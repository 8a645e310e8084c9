"""The Runner: carries out the decisions of one run, each artifact once all it requires is done.

It retags, builds (through the Builder port, never more at once than builder.concurrency), verifies
every push against the registry before believing it, records results in the index, and pushes inputs
records in the background. One artifact's failure ends only what requires it; the others finish and
are recorded. A cancel (Ctrl-C, or `cancelled` set) starts nothing more, stops every tool's process
group through the subprocess seam, and records nothing more.

It depends on the ports only: a RegistryService (registry/protocol.py), a Builder
(builders/protocol.py) and a proc.Processes, so that tests/test_runner.py runs it over the in-memory
fakes of tests/fakes.py. pipeline.py assembles the run around it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from . import plan, proc
from .beside import Beside
from .builders.protocol import Builder, BuildRequest
from .errors import BuildError, RegistryError, ReglessError
from .events import Event, Sink
from .feed import Decides, Feed
from .index import Index, Result
from .outcomes import Failure, Outcome, Reason, Why
from .prepared import Prepared, record_of
from .refs import ImageRef, parse, registry_matches
from .registry import tls
from .registry.protocol import RegistryService
from .report import ArtifactResult

if TYPE_CHECKING:
    from . import waiting
    from .config import Project
    from .records import Staged


class Runner:
    """Acts on one run's decisions over the registry and builder ports (see the module's docstring)."""

    def __init__(self, project: Project, index: Index, registry: RegistryService, builder: Builder, emit: Sink,
                 waits: waiting.Selection | None = None, *, procs: proc.Processes = proc.LOCAL,
                 after_acts: Callable[[list[ArtifactResult]], None] | None = None) -> None:
        self.project = project
        # called once every artifact is done, while its inputs records are still being pushed: the run's
        # end-of-run work (buildah's storage emptied of this run's images) overlaps them instead of following
        self.after_acts = after_acts
        self.procs = procs  # the subprocess seam: a cancel stops every tool through it
        self.waits = waits  # --share: the artifacts another share builds, waited for in the registry
        self.index = index
        self.registry = registry
        self.builder = builder
        self.emit = emit
        self.build_slots = threading.Semaphore(project.builder.concurrency)
        self.builds_started = 0
        self.record_seconds = 0.0  # wall seconds during which an index write was under way (any thread)
        self._recording, self._record_start = 0, 0.0
        self._lock = threading.Lock()
        self.cancelled = threading.Event()
        self.error: ReglessError | None = None  # a decision that could not be made (carry_out)
        # inputs records are pushed beside the next builds rather than before the artifact counts as done:
        # a dependent need not wait for its requirement's record (execute waits for them all at the end)
        self._records = ThreadPoolExecutor(max_workers=2, thread_name_prefix="regless-records")
        self._pending: list[Future[None]] = []

    def _insecure(self, ref: ImageRef) -> bool:
        return registry_matches(ref.registry, self.project.registry.insecure)

    def act(self, p: Prepared, d: plan.Decision, done: dict[str, ArtifactResult]) -> ArtifactResult:
        """Carry out one artifact's decision (cached, retag or build), its requirements `done`; a failure
        is its result (outcome failed), never an exception, so that the others go on."""
        a = p.artifact
        base = ArtifactResult(name=a.name, image=str(a.ref), hash=p.inputs.hash, outcome=Outcome.SKIPPED,
                              reason=d.reason, deploy_tag=a.deploy_tag)
        blocked = [r.image for r in a.requires if done[r.image].outcome in (Outcome.FAILED, Outcome.SKIPPED)]
        if blocked:
            return replace(base, outcome=Outcome.SKIPPED, error=Failure.required(tuple(blocked)))
        entry = self.index.get(p.inputs.hash)
        saved = entry.build_seconds if entry else 0.0
        t0 = time.perf_counter()
        why: tuple[str, ...] = ()
        try:
            if self.waits and a.name in self.waits.wait and d.outcome is not Outcome.CACHED:
                from . import waiting  # only --share waits for another share's builds

                label = self.waits.wait[a.name]
                found = waiting.wait_for(self.registry.digest, p.target, a.name, label, timeout=self.waits.timeout,
                                         emit=self.emit)
                d = plan.Decision(Outcome.CACHED, Reason(Why.OTHER_SHARE, share=label), digest=found)
                base = replace(base, reason=d.reason)
            if d.stale:
                self.index.drop(p.inputs.hash)
                self.emit(Event("warning", a.name, "dropped a stale index entry: its image is gone"))
            if d.outcome is Outcome.CACHED:
                assert d.digest
                digest, outcome, source, secs = d.digest, Outcome.CACHED, None, {}
                keep = entry if entry and entry.digest == digest else None
                self._record(p, keep.with_ref(str(p.target)) if keep else
                             Result(digest, (str(p.target),), self.project.builder.kind, time.time()))
            elif d.outcome is Outcome.RETAGGED:
                assert d.source and entry
                self.emit(Event("retag", a.name, f"retag {d.source} -> {p.target}"))
                digest = self.registry.copy(d.source, p.target)
                outcome, source = Outcome.RETAGGED, str(d.source)
                secs = {"retag": time.perf_counter() - t0}
                self._record(p, entry.with_ref(str(p.target)))
                self._inputs_record(p, digest, source=d.source)
            else:
                asked = self._why_beside(p)
                staged = Beside(lambda: self._stage(p), f"regless-stage-{p.artifact.name}")

                def started() -> None:  # the builder runs: the report's why and the record's blobs beside it
                    asked.start()
                    staged.start()

                digest, secs = self._build(p, done, started=started, staged=staged)
                why = asked.result()
                outcome, source, saved = Outcome.BUILT, None, 0.0
            tags = self._tags(p, digest)
        except (BuildError, RegistryError) as exc:
            error = str(exc)
            if self.project.kind == "skaffold":  # the hints of the shared layers, in skaffold.yaml's words
                from .skaffold import in_skaffold_words

                error = in_skaffold_words(error)
            return replace(base, outcome=Outcome.FAILED, error=Failure.of(exc, error), exit_code=exc.exit_code,
                           tail=getattr(exc, "tail", ()), seconds={"hash": p.seconds})
        return replace(base, outcome=outcome, digest=digest, source=source, tags=tags,
                       seconds={"hash": p.seconds, **secs}, saved_seconds=saved,
                       why=why if outcome is Outcome.BUILT else ())

    def _build(self, p: Prepared, done: dict[str, ArtifactResult], started: Callable[[], None] = lambda: None,
               staged: Beside[Staged | None] | None = None) -> tuple[str, dict[str, float]]:
        a = p.artifact
        args = list(a.build_args) + [(r.alias, done[r.image].reference) for r in a.requires if r.alias]
        bases_insecure = any(self._insecure(parse(t.split(" ")[-1])) for t, _ in p.inputs.settings.bases) or any(
            self._insecure(parse(done[r.image].image)) for r in a.requires)
        req = BuildRequest(context=a.context, dockerfile=a.dockerfile, destination=p.target, target=a.target,
                           platform=a.platform, platforms=a.platforms, build_args=tuple(args),
                           insecure_pull=bases_insecure,
                           insecure_push=self._insecure(p.target),
                           cert_dir=tls.cert_dir(ca) if (ca := self.project.registry.ca_file) else None)
        with self.build_slots:
            if self.cancelled.is_set():
                raise BuildError("cancelled before it started")
            with self._lock:
                self.builds_started += 1
            self.emit(Event("build", a.name, f"building {p.target}"))
            t0 = time.perf_counter()
            def on_line(line: str) -> None:
                started()  # the builder is running: work that can wait for it may start now
                self.emit(Event("line", a.name, line))

            digest = self.builder.build(req, on_line)
            seconds = time.perf_counter() - t0
        # never believe a push: the registry must now serve IMAGE:HASH
        there = self.registry.digest(p.target)
        if there is None:
            raise BuildError(f"pushed {p.target}, but the registry does not serve it")
        if there != digest:
            # another process built the same inputs and pushed after us: its image is as good
            # as ours (same workspace hash), and it is the one that IMAGE:HASH names now
            self.emit(Event("warning", a.name, f"{p.target} was pushed again by another build of the same inputs; "
                            f"using its digest {there}"))
            digest = there
        self.emit(Event("push", a.name, f"pushed {p.target}@{digest}"))
        # the inputs record (pushes) first, the index write (a disk flush) beside it: both only now, once
        # the registry serves the push
        self._inputs_record(p, digest, seconds=seconds, staged=staged)
        self._record(p, Result(digest, (str(p.target),), self.project.builder.kind, time.time(), seconds))
        return digest, {"build": seconds}

    def _why_beside(self, p: Prepared) -> Beside[tuple[str, ...]]:
        """_why on a thread of its own, started (`start`) once the builder has started, at its first line of
        output: the answer is wanted only for the report, once the build is done, so reading the earlier
        inputs and comparing them need not delay the build, nor hold the interpreter while the build's
        process is being started. `result` waits for it, or works it out there if it never started."""
        return Beside(lambda: self._why(p), f"regless-why-{p.artifact.name}")

    def _why(self, p: Prepared) -> tuple[str, ...]:
        """Why it is built: the first changes since its previous inputs (this index, else a record in
        the registry found through its tags). Data for the report; a lookup that fails says so."""
        from . import explain, previous  # only a build asks: a restart that builds nothing need not import them

        try:
            prev = previous.find(p.artifact.ref, p.artifact.tags, None, self.index, self.registry,
                                 enabled=self.project.registry.records,
                                 warn=lambda text: self.emit(Event("warning", p.artifact.name, text)))
        except RegistryError as exc:
            return (f"its previous inputs could not be read ({exc.message})",)
        return previous.why(prev, explain.snapshot(p.inputs))

    def _inputs_record(self, p: Prepared, digest: str, *, source: ImageRef | None = None,
                       seconds: float | None = None, staged: Beside[Staged | None] | None = None) -> None:
        """Store the image's inputs record beside it (records.py), or link the source's after a retag, in
        the background. A record is for explanations only: failing to store one warns and never fails
        the build."""
        if self.project.registry.records and not self.cancelled.is_set():
            with self._lock:
                self._pending.append(self._records.submit(self._store_record, p, digest, source, seconds, staged))

    def _stage(self, p: Prepared) -> Staged | None:
        """The artifact's inputs record encoded, its blobs pushed while its build runs (records.stage);
        None where there is to be no record, or staging failed (store then does it all, as before)."""
        if not self.project.registry.records or self.cancelled.is_set():
            return None
        from . import records

        try:
            return records.stage(self.registry, p.target, record_of(p))
        except (RegistryError, records.RecordError, OSError):
            return None

    def _store_record(self, p: Prepared, digest: str, source: ImageRef | None, seconds: float | None = None,
                      staged: Beside[Staged | None] | None = None) -> None:
        """Store or link one inputs record (on the records pool); a failure warns and never fails the build."""
        if self.cancelled.is_set():
            return
        from . import records  # only a build or a retag stores one: a restart need not import it (gzip, tempfile)

        try:
            if source is None:
                # with the build's seconds: the cost a later plan balances CI jobs on (fanout.py), on any runner
                record = (staged.result() if staged is not None else None) or record_of(p)
                records.store(self.registry, p.target, digest, record, artifact=p.artifact.name,
                              build_seconds=seconds)
            elif not records.link(self.registry, self.registry.copy, source, p.target, digest):
                records.store(self.registry, p.target, digest, record_of(p), artifact=p.artifact.name)
        except (RegistryError, records.RecordError, OSError) as exc:
            self.emit(Event("warning", p.artifact.name, f"the inputs record of {p.target} was not stored "
                            f"({getattr(exc, 'message', exc)}); the image stands"))

    def _tags(self, p: Prepared, digest: str) -> tuple[str, ...]:
        """Point the artifact's own tags (latest, ...) at `digest`. A tag that, checked after the copy, names
        another image is an error, unless that image is what IMAGE:HASH now serves: another build of the
        same inputs (a second CI job, builds not reproducible) tagged it after this one, and the last
        push of those inputs wins, as it does for IMAGE:HASH (_build)."""
        for tag in p.artifact.tags:
            dst = p.artifact.ref.with_tag(tag)
            if self.registry.digest(dst) != digest:
                try:
                    self.registry.copy(p.target.bare().with_digest(digest), dst)
                except RegistryError:
                    now = self.registry.digest(dst)
                    if now is None or now == digest or now != self.registry.digest(p.target):
                        raise
                    self.emit(Event("warning", p.artifact.name, f"{dst} was tagged again by another build of the "
                                    f"same inputs; it names {now}"))
                    continue
                self.emit(Event("tag", p.artifact.name, f"tagged {dst}"))
        return p.artifact.tags

    def _record(self, p: Prepared, result: Result) -> None:
        if self.cancelled.is_set():
            return  # a run being cancelled records nothing more
        with self._lock:
            self._recording += 1
            if self._recording == 1:
                self._record_start = time.perf_counter()
        try:
            self.index.put(p.inputs.hash, result)
            self.index.put_inputs(str(p.artifact.ref), p.inputs.hash, lambda: _snapshot(p))
        finally:
            with self._lock:
                self._recording -= 1
                if self._recording == 0:
                    self.record_seconds += time.perf_counter() - self._record_start

    def execute(self, prepared: list[Prepared], decisions: dict[str, plan.Decision]) -> list[ArtifactResult]:
        """Carry out the decisions, each artifact once all it requires is done (carry_out over a feed
        holding them all)."""
        fed = Feed()
        for p in prepared:
            fed.put(p, decisions[p.artifact.name])
        fed.close()
        return self.carry_out(fed)

    def carry_out(self, fed: Feed) -> list[ArtifactResult]:
        """Carry out the artifacts `fed` hands over as they come, each once all it requires is done, until it
        is closed; then `after_acts` (with the results, in the feed's order) while the inputs records are
        still being pushed. Once the feed is closed with an error, or a decision could not be made
        (`error`: the registry failed a check), nothing more starts: the acts under way finish and are
        recorded, and the caller raises the error. A cancel (`cancel`, or an interrupt on this thread)
        stops every tool and records nothing more."""
        done: dict[str, ArtifactResult] = {}
        order: list[Prepared] = []
        later: dict[str, tuple[Prepared, Decides]] = {}
        running: dict[Future[ArtifactResult], str] = {}
        with ThreadPoolExecutor(max_workers=16) as pool:  # threads start as acts do: no more than run at once
            try:
                while True:
                    items, more, closed = fed.take()
                    for p, d in items:
                        order.append(p)
                        later[p.artifact.name] = (p, d)
                    if fed.error is not None or self.error is not None:
                        later.clear()  # start nothing more
                    for name, (p, d) in list(later.items()):
                        if all(r.image in done for r in p.artifact.requires):
                            del later[name]
                            running[pool.submit(self._decided, p, d, done)] = name
                    if closed and not running:
                        break
                    waits: list[Future[Any]] = [*running] if closed else [*running, more]
                    finished, _ = wait(waits, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        if fut not in running:  # `more`: the feed has more
                            continue
                        name = running.pop(fut)
                        try:
                            res = fut.result()
                        except ReglessError as exc:  # no decision (a check the registry failed): the run's error
                            self.error = self.error or exc
                            continue
                        except CancelledError:  # its check was dropped, the feed closed on an error: not started
                            continue
                        done[name] = res
                        self.emit(Event("outcome", name, res.outcome, {"result": res}))
            except BaseException:
                self.cancel()
                for fut in running:
                    fut.cancel()
                self._records.shutdown(wait=False, cancel_futures=True)
                raise
        results = [done[p.artifact.name] for p in order if p.artifact.name in done]
        if self.cancelled.is_set():  # cancelled from another thread: as above, nothing more
            self._records.shutdown(wait=False, cancel_futures=True)
            return results
        try:
            if self.after_acts is not None:
                self.after_acts(results)
        finally:
            wait(self._pending)
            self._records.shutdown()
        return results

    def cancel(self) -> None:
        """Start nothing more, stop every builder's process group; a killed build fails and so records
        nothing (SIGINT/SIGTERM)."""
        self.cancelled.set()
        self.procs.terminate_all()

    def _decided(self, p: Prepared, d: Decides, done: dict[str, ArtifactResult]) -> ArtifactResult:
        """act, once the decision is made where the feed gave the call that makes it (it waits for the
        artifact's check)."""
        if callable(d):
            d = d()
            self.emit(Event("decision", p.artifact.name, d.outcome.value, {"decision": d}))
        return self.act(p, d, done)


def _snapshot(p: Prepared) -> dict[str, Any]:
    """explain's snapshot of `p`'s inputs, for the index's inputs table: explain is imported when a record
    is made, after a build has started, not before the builder."""
    from . import explain

    return explain.snapshot(p.inputs)

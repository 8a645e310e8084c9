"""Orchestration's parts: hash every artifact, ask the registry, act in dependency order, record.

The steps pipeline.py assembles into the one pipeline of build, plan and explain: `prepare` (hash),
`facts` (ask the registry) and the `Runner` (act on plan.decide's decisions). It reports through
events and returns results.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

from . import dockerfile, explain, manifests, multiplatform, plan, platforms, previous, proc, records
from .hashing import ignore, inputs
from . import waiting
from .builders import BuildRequest, Builder
from .config import Artifact, Project
from .errors import BuildError, DockerfileError, RegistryError
from .events import Event, Sink
from .index import Index, Result
from .outcomes import Failure, Outcome, Reason, Why
from .refs import ImageRef, RefError, parse, registry_matches
from .registry import Reliable, tls
from .report import ArtifactResult


@dataclass(frozen=True)
class Prepared:
    artifact: Artifact
    inputs: inputs.Inputs
    target: ImageRef  # IMAGE:HASH
    seconds: float
    bases: tuple[str, ...] = ()  # every base as it enters the hash (FROM text; "platform text" for several)
    complete: bool = True  # every base (of this artifact and those it requires) resolved: the hash is final
    ignore_file: str | None = None  # the .dockerignore that chose the files


def closure(project: Project, names: Iterable[str] | None) -> list[Artifact]:
    """The named artifacts (all when none) and everything they require, in dependency order."""
    wanted = [project.artifact(n) for n in names] if names else list(project.artifacts)
    by_name = {a.name: a for a in project.artifacts}
    order: list[Artifact] = []

    def add(a: Artifact) -> None:
        if a in order:
            return
        for req in a.requires:
            add(by_name[req.image])
        order.append(a)

    for a in wanted:
        add(a)
    return order


def _bases(project: Project, order: list[Artifact], analyses: dict[str, dockerfile.Analysis],
           registry: Reliable, concurrency: int, offline: bool = False) -> dict[str, str]:
    """Resolve every FROM image to its digest, once per run and concurrently (offline: only those pinned
    by digest in the Dockerfile)."""
    todo: dict[str, tuple[Artifact, dockerfile.BaseImage]] = {}
    resolved: dict[str, str] = {}
    for a in order:
        for base in analyses[a.name].bases:
            if base.text.startswith(dockerfile.PENDING_PREFIX):
                continue
            try:
                ref = parse(base.text)
            except RefError as exc:
                raise DockerfileError(f"FROM {base.text!r}: {exc}", path=str(a.dockerfile), line=base.line) from exc
            if ref.digest:
                resolved[base.text] = ref.digest
            else:
                todo.setdefault(base.text, (a, base))
    if todo and not offline:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            found = dict(zip(todo, pool.map(lambda t: registry.digest(parse(t)), todo)))
        for text, digest in found.items():
            if digest is None:
                a, base = todo[text]
                raise DockerfileError(f"base image {text} not found in its registry", path=str(a.dockerfile),
                                      line=base.line, hint="push the base image first, or fix the FROM line")
            resolved[text] = digest
    return resolved


def prepare(project: Project, order: list[Artifact], index: Index, registry: Reliable,
            emit: Sink, *, offline: bool = False, on_hashed: Callable[[Prepared], None] | None = None
            ) -> list[Prepared]:
    """Workspace hash of each artifact (requires first), with base images resolved through the registry.
    `offline` asks the registry nothing: bases not pinned by digest stay unresolved (`deps --offline`),
    and such an artifact's hash, and its dependents', is not final (Prepared.complete). `on_hashed` is
    called with each artifact as soon as its hash is known (its registry check starts)."""
    analyses: dict[str, dockerfile.Analysis] = {}
    for a in order:
        args = dict(a.build_args) | {r.alias: dockerfile.pending(r.alias) for r in a.requires if r.alias}
        analyses[a.name] = multiplatform.analyze(a, args) if a.platforms else dockerfile.analyze(
            a.dockerfile, build_args=args, target=a.target,
            platform=platforms.parse(a.platform) if a.platform else None)
    for a in order:
        if unchecked := analyses[a.name].unchecked:
            emit(Event("warning", a.name, f"ADD {', '.join(unchecked)}: only the URL is hashed, not what it serves; "
                       "a change there is not seen (pin it with ADD --checksum=sha256:..., or fetch it into the "
                       "context)"))
    bases = _bases(project, [a for a in order if not a.platforms], analyses, registry, project.registry.concurrency,
                   offline)
    if not offline:
        bases |= _platform_bases(project, [a for a in order if a.platforms], analyses, registry)
    memo = index.memo()
    prepared: dict[str, Prepared] = {}
    new_memo: dict[str, inputs.MemoDir] = {}
    walked: dict[tuple[Path, tuple[str, ...]], list[inputs._Entry]] = {}  # one listing per shared context
    try:
        for a in order:
            t0 = time.perf_counter()
            an = analyses[a.name]
            rules = ignore.load(a.context, a.dockerfile)
            files, records, _read = inputs.collect(
                a.context, a.dockerfile, an, rules, inputs.LayeredMemo(memo, new_memo),
                progress=lambda n, b, name=a.name: emit(Event("progress", name, "hashing", {"files": n, "bytes": b})),
                walked=walked)
            inputs.merge_records(new_memo, records)
            settings = inputs.Settings(
                builder=project.builder.kind, dockerfile=a.dockerfile.read_bytes(), target=a.target,
                platform=_hashed_platform(a, an), build_args=a.build_args,
                requires=tuple((r.alias, prepared[r.image].inputs.hash) for r in a.requires),
                bases=_hashed_bases(a, an, bases),
                remote=an.remote,
            )
            h = inputs.workspace_hash(settings, files)
            key = multiplatform.base_key if a.platforms else (lambda b: b.text)
            wanted = tuple(key(b) for b in an.bases if not b.text.startswith(dockerfile.PENDING_PREFIX))
            complete = all(w in bases for w in wanted) and all(prepared[r.image].complete for r in a.requires)
            prepared[a.name] = Prepared(a, inputs.Inputs(tuple(files), settings, h, _read), a.ref.with_tag(h),
                                        time.perf_counter() - t0, wanted, complete, rules.source)
            emit(Event("hashed", a.name, h, {"files": len(files), "bytes": _read}))
            if on_hashed is not None:
                on_hashed(prepared[a.name])
    finally:
        memo.close()
    index.memo_put(new_memo)
    return [prepared[a.name] for a in order]


def _hashed_platform(a: Artifact, an: dockerfile.Analysis) -> str | None:
    """The platform as it enters the hash: as configured; else the runner's when the Dockerfile names an
    automatic platform ARG (their values come from it), and none as before otherwise."""
    if a.platforms:
        return multiplatform.hashed_platform(a)
    if a.platform:
        return a.platform
    return str(platforms.host()) if an.platform_args else None


def _hashed_bases(a: Artifact, an: dockerfile.Analysis, bases: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """(base, digest) pairs: by FROM text for one platform (as before); by platform and text for several."""
    key = multiplatform.base_key if a.platforms else (lambda b: b.text)
    return tuple((key(b), bases[key(b)]) for b in an.bases if key(b) in bases)


def _platform_bases(project: Project, multi: list[Artifact], analyses: dict[str, dockerfile.Analysis],
                    registry: Reliable) -> dict[str, str]:
    """Each base of each multi-platform artifact, resolved to its platform's manifest digest."""
    wanted = [w for a in multi for w in multiplatform.wanted(a, analyses[a.name])]
    if not wanted:
        return {}
    found = manifests.resolve(wanted, registry.manifest, project.registry.concurrency)
    return {f"{p} {t}": d for (t, p), d in found.items()}


def facts(prepared: list[Prepared], index: Index, registry: Reliable, *, no_cache: bool,
          concurrency: int, started: Mapping[str, Future[str | None]] | None = None) -> dict[str, plan.Facts]:
    """Ask the registry about every IMAGE:HASH at once (waiting for the checks already `started`), then
    about the index's other references for misses."""
    out: dict[str, plan.Facts] = {}
    if no_cache:
        return {p.artifact.name: plan.Facts(p.target, None, no_cache=True) for p in prepared}
    started = started or {}
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        checks_ = [started.get(p.artifact.name) or pool.submit(registry.digest, p.target) for p in prepared]
        found = {p.artifact.name: c.result() for p, c in zip(prepared, checks_)}
        entries = {p.artifact.name: index.get(p.inputs.hash) for p in prepared}
        misses = [(p.target, e) for p in prepared if found[p.artifact.name] is None
                  and (e := entries[p.artifact.name]) is not None]
        live: dict[str, str | None] = {}
        for checked in pool.map(lambda te: _first_live(registry, *te), misses):
            live |= checked
    for p in prepared:
        name = p.artifact.name
        e = entries[name]
        out[name] = plan.Facts(p.target, found[name], e,
                               {r: live.get(r) for r in (e.refs if e else ()) if r in live})
    return out


def record_of(p: Prepared) -> dict:
    """The inputs record of a prepared artifact: explain's snapshot, the hash recipe and the artifact."""
    return {**explain.snapshot(p.inputs), "recipe": inputs.RECIPE, "artifact": p.artifact.name}


def _first_live(registry: Reliable, target: ImageRef, entry: Result) -> dict[str, str | None]:
    """The entry's other references checked in plan.retag_candidates' order up to the first that still
    carries its digest: the one plan.decide retags from (the later ones would not change the decision,
    and a renamed image's entry gathers a reference per name it had). All of them when none does."""
    checked: dict[str, str | None] = {}
    for text in plan.retag_candidates(target, entry):
        checked[text] = registry.digest(parse(text))
        if checked[text] == entry.digest:
            break
    return checked


class Runner:
    def __init__(self, project: Project, index: Index, registry: Reliable, builder: Builder, emit: Sink,
                 waits: waiting.Selection | None = None) -> None:
        self.project = project
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
        # inputs records are pushed beside the next builds rather than before the artifact counts as done:
        # a dependent need not wait for its requirement's record (execute waits for them all at the end)
        self._records = ThreadPoolExecutor(max_workers=2, thread_name_prefix="regless-records")
        self._pending: list[Future[None]] = []

    def _insecure(self, ref: ImageRef) -> bool:
        return registry_matches(ref.registry, self.project.registry.insecure)

    def act(self, p: Prepared, d: plan.Decision, done: dict[str, ArtifactResult]) -> ArtifactResult:
        a = p.artifact
        base = dict(name=a.name, image=str(a.ref), hash=p.inputs.hash, reason=d.reason, deploy_tag=a.deploy_tag)
        blocked = [r.image for r in a.requires if done[r.image].outcome in (Outcome.FAILED, Outcome.SKIPPED)]
        if blocked:
            return ArtifactResult(**base, outcome=Outcome.SKIPPED, error=Failure.required(tuple(blocked)))
        entry = self.index.get(p.inputs.hash)
        saved = entry.build_seconds if entry else 0.0
        t0 = time.perf_counter()
        why: tuple[str, ...] = ()
        try:
            if self.waits and a.name in self.waits.wait and d.outcome is not Outcome.CACHED:
                label = self.waits.wait[a.name]
                found = waiting.wait_for(self.registry.digest, p.target, a.name, label, timeout=self.waits.timeout,
                                         emit=self.emit)
                d = plan.Decision(Outcome.CACHED, Reason(Why.OTHER_SHARE, share=label), digest=found)
                base["reason"] = d.reason
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
                why = self._why(p)
                digest, secs = self._build(p, done)
                outcome, source, saved = Outcome.BUILT, None, 0.0
            tags = self._tags(p, digest)
        except (BuildError, RegistryError) as exc:
            error = str(exc)
            if self.project.kind == "skaffold":  # the hints of the shared layers, in skaffold.yaml's words
                from .skaffold import in_skaffold_words

                error = in_skaffold_words(error)
            return ArtifactResult(**base, outcome=Outcome.FAILED, error=Failure.of(exc, error), exit_code=exc.exit_code,
                                  tail=getattr(exc, "tail", ()), seconds={"hash": p.seconds})
        return ArtifactResult(**base, outcome=outcome, digest=digest, source=source, tags=tags,
                              seconds={"hash": p.seconds, **secs}, saved_seconds=saved,
                              why=why if outcome is Outcome.BUILT else ())

    def _build(self, p: Prepared, done: dict[str, ArtifactResult]) -> tuple[str, dict[str, float]]:
        a = p.artifact
        args = list(a.build_args) + [(r.alias, done[r.image].reference) for r in a.requires if r.alias]
        bases_insecure = any(self._insecure(parse(t.split(" ")[-1])) for t, _ in p.inputs.settings.bases) or any(
            self._insecure(parse(done[r.image].image)) for r in a.requires)
        req = BuildRequest(context=a.context, dockerfile=a.dockerfile, destination=p.target, target=a.target,
                           platform=a.platform, platforms=a.platforms, build_args=tuple(args),
                           insecure_pull=bases_insecure,
                           insecure_push=self._insecure(p.target),
                           cert_dir=tls.cert_dir(self.project.registry.ca_file) if self.project.registry.ca_file else None)
        with self.build_slots:
            if self.cancelled.is_set():
                raise BuildError("cancelled before it started")
            with self._lock:
                self.builds_started += 1
            self.emit(Event("build", a.name, f"building {p.target}"))
            t0 = time.perf_counter()
            digest = self.builder.build(req, lambda line: self.emit(Event("line", a.name, line)))
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
        self._record(p, Result(digest, (str(p.target),), self.project.builder.kind, time.time(), seconds))
        self._inputs_record(p, digest, seconds=seconds)
        return digest, {"build": seconds}

    def _why(self, p: Prepared) -> tuple[str, ...]:
        """Why it is built: the first changes since its previous inputs (this index, else a record in
        the registry found through its tags). Data for the report; a lookup that fails says so."""
        try:
            prev = previous.find(p.artifact.ref, p.artifact.tags, None, self.index, self.registry,
                                 enabled=self.project.registry.records,
                                 warn=lambda text: self.emit(Event("warning", p.artifact.name, text)))
        except RegistryError as exc:
            return (f"its previous inputs could not be read ({exc.message})",)
        return previous.why(prev, explain.snapshot(p.inputs))

    def _inputs_record(self, p: Prepared, digest: str, *, source: ImageRef | None = None,
                       seconds: float | None = None) -> None:
        """Store the image's inputs record beside it (records.py), or link the source's after a retag, in
        the background. A record is for explanations only: failing to store one warns and never fails
        the build."""
        if self.project.registry.records and not self.cancelled.is_set():
            with self._lock:
                self._pending.append(self._records.submit(self._store_record, p, digest, source, seconds))

    def _store_record(self, p: Prepared, digest: str, source: ImageRef | None, seconds: float | None = None) -> None:
        if self.cancelled.is_set():
            return
        try:
            if source is None:
                # with the build's seconds: the cost a later plan balances CI jobs on (fanout.py), on any runner
                record = record_of(p) | ({"buildSeconds": round(seconds, 1)} if seconds is not None else {})
                records.store(self.registry, p.target, digest, record, artifact=p.artifact.name)
            elif not records.link(self.registry, self.registry.copy, source, p.target, digest):
                records.store(self.registry, p.target, digest, record_of(p), artifact=p.artifact.name)
        except (RegistryError, records.RecordError, OSError) as exc:
            self.emit(Event("warning", p.artifact.name, f"the inputs record of {p.target} was not stored "
                            f"({getattr(exc, 'message', exc)}); the image stands"))

    def _tags(self, p: Prepared, digest: str) -> tuple[str, ...]:
        for tag in p.artifact.tags:
            dst = p.artifact.ref.with_tag(tag)
            if self.registry.digest(dst) != digest:
                self.registry.copy(p.target.bare().with_digest(digest), dst)
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
            self.index.put_inputs(str(p.artifact.ref), p.inputs.hash, lambda: explain.snapshot(p.inputs))
        finally:
            with self._lock:
                self._recording -= 1
                if self._recording == 0:
                    self.record_seconds += time.perf_counter() - self._record_start

    def execute(self, prepared: list[Prepared], decisions: dict[str, plan.Decision]) -> list[ArtifactResult]:
        """Carry out the decisions, each artifact once all it requires is done."""
        done: dict[str, ArtifactResult] = {}
        waiting = {p.artifact.name: p for p in prepared}
        running: dict[Future[ArtifactResult], str] = {}
        with ThreadPoolExecutor(max_workers=max(1, min(len(prepared), 16))) as pool:
            try:
                while waiting or running:
                    for name, p in list(waiting.items()):
                        if all(r.image in done for r in p.artifact.requires):
                            del waiting[name]
                            running[pool.submit(self.act, p, decisions[name], done)] = name
                    finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                    for fut in finished:
                        name = running.pop(fut)
                        res = fut.result()
                        done[name] = res
                        self.emit(Event("outcome", name, res.outcome, {"result": res}))
            except BaseException:
                # cancelled (SIGINT/SIGTERM): start nothing more, stop every builder's process group,
                # then let the workers finish; a killed build fails and so records nothing
                self.cancelled.set()
                for fut in running:
                    fut.cancel()
                proc.terminate_all()
                self._records.shutdown(wait=False, cancel_futures=True)
                raise
        wait(self._pending)
        self._records.shutdown()
        return [done[p.artifact.name] for p in prepared]


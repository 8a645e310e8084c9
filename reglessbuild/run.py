"""Orchestration's parts: hash every artifact, ask the registry, act in dependency order, record.

The steps pipeline.py assembles into the one pipeline of build, plan and explain: `prepare` (hash),
`facts` (ask the registry) and the `Runner` (act on plan.decide's decisions). It reports through
events and returns results.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from . import dockerfile, parsememo, plan, platforms
from .config import Artifact, Project
from .errors import DockerfileError
from .events import Event, Sink
from .hashing import ignore, inputs
from .index import Index, Result
from .prepared import Prepared, record_of
from .refs import ImageRef, RefError, parse
from .registry.protocol import RegistryService
from .runner import Runner

__all__ = ["Prepared", "Runner", "closure", "fact", "facts", "prepare", "recent_first", "record_of"]


def closure(project: Project, names: Iterable[str] | None) -> list[Artifact]:
    """The named artifacts (all when none) and everything they require, in dependency order."""
    wanted = [project.artifact(n) for n in names] if names else list(project.artifacts)
    return _requires_first(wanted, {a.name: a for a in project.artifacts})


def _requires_first(wanted: Iterable[Artifact], by_name: Mapping[str, Artifact],
                    rank: Callable[[Artifact], float] | None = None) -> list[Artifact]:
    """`wanted` in their order, each after what it requires (from `by_name`; in the order of `rank`
    where given, else as listed), each once."""
    order: list[Artifact] = []

    def add(a: Artifact) -> None:
        if a in order:
            return
        required = [by_name[req.image] for req in a.requires]
        for r in sorted(required, key=rank) if rank is not None else required:
            add(r)
        order.append(a)

    for a in wanted:
        add(a)
    return order


def recent_first(order: list[Artifact], index: Index) -> list[Artifact]:
    """The artifacts of `order` (a dependency order) again, those whose inputs changed most recently
    first, each still after what it requires; the others as they were. A build starts once its artifact
    is hashed (pipeline._streamed), and the artifact a user has just changed is most often the one they
    changed last time: hashed first, its build need not wait for the hashing of all the others. The
    order changes no hash and no result."""
    changed = index.changed_since([str(a.ref) for a in order])

    def rank(a: Artifact) -> float:
        return -changed.get(str(a.ref), 0.0)

    return _requires_first(sorted(order, key=rank), {a.name: a for a in order}, rank)  # sorted is stable


def _bases(project: Project, order: list[Artifact], analyses: dict[str, dockerfile.Analysis],
           registry: RegistryService, concurrency: int, offline: bool = False) -> dict[str, str]:
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
            found = dict(zip(todo, pool.map(lambda t: registry.digest(parse(t)), todo), strict=True))
        for text, digest in found.items():
            if digest is None:
                a, base = todo[text]
                raise DockerfileError(f"base image {text} not found in its registry", path=str(a.dockerfile),
                                      line=base.line, hint="push the base image first, or fix the FROM line")
            resolved[text] = digest
    return resolved


def prepare(project: Project, order: list[Artifact], index: Index, registry: RegistryService,
            emit: Sink, *, offline: bool = False, on_hashed: Callable[[Prepared], None] | None = None
            ) -> list[Prepared]:
    """Workspace hash of each artifact (requires first), with base images resolved through the registry.
    `offline` asks the registry nothing: bases not pinned by digest stay unresolved (`deps --offline`),
    and such an artifact's hash, and its dependents', is not final (Prepared.complete). `on_hashed` is
    called with each artifact as soon as its hash is known (its registry check starts)."""
    analyses: dict[str, dockerfile.Analysis] = {}
    kept = parsememo.Batch(index)  # the analyses of earlier runs: a restart runs no Dockerfile parser
    try:
        for a in order:
            args = dict(a.build_args) | {r.alias: dockerfile.pending(r.alias) for r in a.requires if r.alias}
            if a.platforms:
                from . import multiplatform  # only then: a single-platform restart need not import it (nor manifests)

                analyses[a.name] = multiplatform.analyze(a, args)
            else:
                analyses[a.name] = parsememo.analyze(a.dockerfile, kept, build_args=args, target=a.target,
                                                     platform=platforms.parse(a.platform) if a.platform else None)
    finally:
        kept.flush()
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
                progress=_progress(emit, a.name),
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
            key = _base_key(a)
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


def _progress(emit: Sink, name: str) -> Callable[[int, int], None]:
    """Tells the user interface how far hashing `name` has got (files and bytes read so far)."""
    return lambda files, read: emit(Event("progress", name, "hashing", {"files": files, "bytes": read}))


def _hashed_platform(a: Artifact, an: dockerfile.Analysis) -> str | None:
    """The platform as it enters the hash: as configured; else the runner's when the Dockerfile names an
    automatic platform ARG (their values come from it), and none as before otherwise."""
    if a.platforms:
        from . import multiplatform

        return multiplatform.hashed_platform(a)
    if a.platform:
        return a.platform
    return str(platforms.host()) if an.platform_args else None


def _base_key(a: Artifact) -> Callable[[dockerfile.BaseImage], str]:
    """How a base enters the hash and the resolved bases: its FROM text for one platform; its platform
    and text for several (multiplatform.py, imported only then)."""
    if a.platforms:
        from . import multiplatform

        return multiplatform.base_key
    return lambda b: b.text


def _hashed_bases(a: Artifact, an: dockerfile.Analysis, bases: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """(base, digest) pairs: by FROM text for one platform (as before); by platform and text for several."""
    key = _base_key(a)
    return tuple((key(b), bases[key(b)]) for b in an.bases if key(b) in bases)


def _platform_bases(project: Project, multi: list[Artifact], analyses: dict[str, dockerfile.Analysis],
                    registry: RegistryService) -> dict[str, str]:
    """Each base of each multi-platform artifact, resolved to its platform's manifest digest."""
    if not multi:
        return {}
    from . import manifests, multiplatform  # only for multi-platform artifacts

    wanted = [w for a in multi for w in multiplatform.wanted(a, analyses[a.name])]
    if not wanted:
        return {}
    found = manifests.resolve(wanted, registry.manifest, project.registry.concurrency)
    return {f"{p} {t}": d for (t, p), d in found.items()}


def facts(prepared: list[Prepared], index: Index, registry: RegistryService, *, no_cache: bool,
          concurrency: int, started: Mapping[str, Future[str | None]] | None = None) -> dict[str, plan.Facts]:
    """Ask the registry about every IMAGE:HASH at once (waiting for the checks already `started`), then
    about the index's other references for misses."""
    out: dict[str, plan.Facts] = {}
    if no_cache:
        return {p.artifact.name: plan.Facts(p.target, None, no_cache=True) for p in prepared}
    started = started or {}
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        checks_ = [started.get(p.artifact.name) or pool.submit(registry.digest, p.target) for p in prepared]
        found = {p.artifact.name: c.result() for p, c in zip(prepared, checks_, strict=True)}
        entries = {p.artifact.name: index.get(p.inputs.hash) for p in prepared}
        misses = [(p.target, e) for p in prepared if found[p.artifact.name] is None
                  and (e := entries[p.artifact.name]) is not None]
        live: dict[str, str | None] = {}
        for checked in pool.map(lambda te: _first_live(registry, *te), misses):
            live |= checked
    for p in prepared:
        out[p.artifact.name] = _facts_of(p.target, found[p.artifact.name], entries[p.artifact.name], live)
    return out


def fact(p: Prepared, found: str | None, index: Index, registry: RegistryService, *, no_cache: bool) -> plan.Facts:
    """One artifact's facts, as `facts` gathers them, its check's answer `found` in hand (a build that
    starts each artifact as soon as it is decided: pipeline.build)."""
    if no_cache:
        return plan.Facts(p.target, None, no_cache=True)
    e = index.get(p.inputs.hash)
    return _facts_of(p.target, found, e, _first_live(registry, p.target, e) if found is None and e is not None
                     else {})


def _facts_of(target: ImageRef, found: str | None, entry: Result | None, live: Mapping[str, str | None]
              ) -> plan.Facts:
    """The facts of IMAGE:HASH `target` from its check, its index entry and the entry's references checked."""
    return plan.Facts(target, found, entry, {r: live.get(r) for r in (entry.refs if entry else ()) if r in live})


def _first_live(registry: RegistryService, target: ImageRef, entry: Result) -> dict[str, str | None]:
    """The entry's other references checked in plan.retag_candidates' order up to the first that still
    carries its digest: the one plan.decide retags from (the later ones would not change the decision,
    and a renamed image's entry gathers a reference per name it had). All of them when none does."""
    checked: dict[str, str | None] = {}
    for text in plan.retag_candidates(target, entry):
        checked[text] = registry.digest(parse(text))
        if checked[text] == entry.digest:
            break
    return checked

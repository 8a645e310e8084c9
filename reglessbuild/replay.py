"""A no-change restart answered from the run before it: the same results, once nothing they came from changed.

A restart hashes every input file again, only to find the hashes it found last time. Here the run before
is kept instead (in the index, by its command line, working folder, user and environment): what it read
(witness.py: its config, Dockerfiles and ignore files, the folders it listed, the input files it hashed,
regless's and Python's own modules, the folders of PATH) with the `stat` of each, the registry's answers
it got, and its results. A later run of the same command checks those and nothing else: every path's
`stat` (device, inode, mode, size, mtime and ctime, in nanoseconds) the same, or still missing; every
registry answer the same (a HEAD each, made in this process: manifesthttp.py, or no replay); every index
entry the run read (its results and inputs tables: index.WITNESSED) the same. Then it prints the kept
results with its own timings; any difference, or anything it cannot check this way, and the run is
made in full, as if there were no replay (and kept in turn, where it can be).

What makes this as safe as hashing: a kept `stat` was taken after the run and is older than the run's
start by more than the stat memo's racy margin, so the run read exactly what that `stat` describes; a
change since changes the `stat` (a file's ctime cannot be set back; a folder's mtime and ctime move
whenever an entry is added, removed or renamed). Only a run that did nothing but find its images is kept:
no build, retag, write to the registry or process started, every answer an image found, no warning of a
damaged index. `REGLESS_REPLAY=0` turns replays off; `-v`, --no-cache and --share never replay.
"""

from __future__ import annotations

import argparse
import json
import marshal
import os
import sys
import time
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__, began

if TYPE_CHECKING:
    import lmdb

    from .console import Console
    from .index import Index
    from .report import ArtifactResult, Report
    from .settings import RegistrySettings
    from .witness import Witness

FORMAT = 1
DB = b"replays"  # the index's table of kept runs (index.DB_NAMES)
RACY_NS = 2_000_000_000  # hashing/statmemo.RACY_SECONDS, in nanoseconds (a test holds them equal)
OFF_ENV = "REGLESS_REPLAY"
SLOW = 0.005  # seconds: a registry check taking longer is a registry far enough to ask several at once
KEEP = 16  # kept runs in an index: one per command line, folder and environment replayed

StatKey = tuple[int, int, int, int, int, int] | None  # dev, ino, mode, size, mtime_ns, ctime_ns; None: missing
MISSING = (-1, -1, -1, -1, -1, -1)  # a missing path's kept stat


def enabled(args: argparse.Namespace, environ: Mapping[str, str]) -> bool:
    """Whether this command line may be replayed or kept: `build` without -v, --no-cache or --share, and
    neither REGLESS_REPLAY nor REGLESS_DIRECT_CHECKS turned off."""
    off = ("0", "false", "no", "off")
    return (args.command == "build" and not args.verbose and not args.no_cache and args.share is None
            and environ.get(OFF_ENV, "1").strip().lower() not in off
            and environ.get("REGLESS_DIRECT_CHECKS", "1").strip().lower() not in off)


def key(argv: Sequence[str], environ: Mapping[str, str], cwd: str) -> bytes:
    """What a kept run is found by: the same regless and Python, command line, working folder, user
    and environment (all of it: a variable the run reads is part of its input)."""
    import xxhash

    material = [FORMAT, __version__, sys.version, sys.executable, os.getuid(), os.getgid(), cwd, list(argv),
                sorted(environ.items())]
    return xxhash.xxh3_128_digest(json.dumps(material).encode())


def _stat(path: str, follow: bool) -> StatKey:
    """The path's stat as kept (None: missing); another failure to look (a folder not readable) raises OSError."""
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (st.st_dev, st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


# ---------------------------------------------------------------------------------------------- keeping


def save(index: Index, args: argparse.Namespace, w: Witness, rep: Report, order: Sequence[str], r: Console,
         registry: RegistrySettings, cache_dir: Path, *, moved: bool) -> str | None:
    """Keep this run for a replay, if it can be (the module's doc); else why not (None: kept)."""
    key_ = getattr(args, "replay_key", None)
    if key_ is None:
        return "replays are off"
    why = _why_not(w, rep, moved)
    if why is not None:
        return why
    # regless's own state is left out: the index (the entries the run read are kept instead) and the
    # cache folder, which every run writes; a file of it a run reads (storage.lock.pending) stays in
    cache = os.path.abspath(cache_dir)
    own = (cache, os.path.join(cache, "index"))
    looked: set[tuple[str, bool]] = set()  # (path, follow symlinks): lstat for the input files themselves
    for group, follow in ((w.listed, True), (w.opened, True), (_modules(), True), (_path_dirs(), True),
                          (w.inputs, False)):
        looked.update((p, follow) for p in group if p not in own and not p.startswith(own[1] + os.sep))
    limit = w.started_ns - RACY_NS
    ordered = sorted(looked)
    stats = array("q")
    for p, follow in ordered:
        try:
            k = _stat(p, follow)
        except OSError as exc:
            return f"{p} cannot be looked at ({exc.strerror})"
        if k is not None and (k[4] >= limit or k[5] >= limit):
            return f"{p} changed within {RACY_NS / 1e9:g} s of the run's start"
        stats.extend(MISSING if k is None else k)
    kept_run = {
        "paths": os.fsencode("".join(p + "\0" for p, _ in ordered)), "follow": bytes(f for _, f in ordered),
        "stats": stats.tobytes(),
        "answers": sorted(w.answers.items(), key=repr),
        "results": [_result(x) for x in rep.results], "order": list(order), "width": r.width,
        "warned": list(r.warned), "tool": rep.registry_tool, "toolSource": rep.registry_source,
        "builder": rep.builder, "builderSource": rep.builder_source,
        "insecure": list(registry.insecure), "caFile": str(registry.ca_file) if registry.ca_file else None,
        "timeout": registry.timeout, "concurrency": registry.concurrency,
    }

    def put(txn: lmdb.Transaction[bytes]) -> None:
        db = index.dbs["replays"]
        # the index entries the run read, as they are at its end (with what it wrote itself): what a
        # later run would read
        kept_run["index"] = [(name, k, txn.get(k, db=index.dbs[name])) for name, k in sorted(w.index_reads)]
        txn.put(key_, marshal.dumps((FORMAT, kept_run)), db=db)
        txn.put(b"when:" + key_, str(time.time_ns()).encode(), db=db)
        keep_at_most(txn, db, KEEP)

    try:
        index.write(put)
    except OSError as exc:
        return f"the index could not be written ({exc})"
    return None


def keep_at_most(txn: lmdb.Transaction[bytes], db: Any, n: int) -> None:
    """Leave the `n` most recently kept runs in the table, remove the others. A CI job's environment
    differs from the last job's (in its ids), so that every job would add one."""
    kept = sorted((int(v), k[5:]) for k, v in txn.cursor(db=db) if k.startswith(b"when:"))
    for _, old in kept[:-n]:
        txn.delete(old, db=db)
        txn.delete(b"when:" + old, db=db)


def _why_not(w: Witness, rep: Report, moved: bool) -> str | None:
    from .outcomes import Outcome, Why

    if w.spoiled:
        return w.spoiled
    if moved:
        return "the index was set aside as damaged"
    if rep.builds_started:
        return "it built"
    for r in rep.results:
        plain = r.error is None and not r.tail and not r.why and r.log is None and r.source is None
        if not plain or not (r.outcome is Outcome.CACHED or (r.outcome is Outcome.SKIPPED and r.reason is not None
                                                             and r.reason.code in (Why.UNSUPPORTED,
                                                                                   Why.REQUIRES_LEFT_OUT))):
            return f"{r.name} was {r.outcome}"
    for ref, got in w.answers.items():  # a digest, or None (Witness.answer spoils a run on anything else)
        if got is None:
            return f"{ref}: not found"
    return None


def _result(r: ArtifactResult) -> tuple[Any, ...]:
    reason = None if r.reason is None else (r.reason.code.value, r.reason.reference, r.reason.share,
                                            r.reason.builder, tuple(r.reason.requires))
    return (r.name, r.image, r.hash, r.outcome.value, reason, r.digest, r.saved_seconds, tuple(r.tags),
            r.deploy_tag)


def _modules() -> Iterable[str]:
    """The files of every module loaded (regless's, its libraries', Python's): other code, another result."""
    for m in list(sys.modules.values()):
        f = getattr(m, "__file__", None)
        if isinstance(f, str):
            yield os.path.abspath(f)


def _path_dirs() -> Iterable[str]:
    """PATH's folders: a tool found (or not) in one of them is the run's registry tool."""
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if d:
            yield os.path.abspath(d)


# ---------------------------------------------------------------------------------------------- replaying


class _Miss(Exception):
    """Something a kept run read is not as it was: the run is made in full."""


def attempt(args: argparse.Namespace, argv: Sequence[str], environ: Mapping[str, str], r: Console,
            cache_dir: Callable[[], Path]) -> int | None:
    """Replay the kept run of this command line if nothing it read changed (its exit code), else None,
    with the run's reads witnessed (witness.start) and args.replay_key set, for the run to be kept."""
    if not enabled(args, environ):
        return None
    from . import witness

    key_ = key(argv, environ, os.getcwd())
    args.replay_key = key_
    try:
        return _replay(args, key_, r, args.cache_dir or cache_dir())
    except _Miss:
        pass
    witness.start()
    return None


def _replay(args: argparse.Namespace, key_: bytes, r: Console, cache_dir: Path) -> int:
    t0 = time.perf_counter()
    kept = _read(cache_dir / "index", key_)
    t1 = time.perf_counter()
    # the registry's answers are awaited on other threads while this one looks at the files: a miss in
    # either is a miss, and the registry's answers are then not used
    import threading

    asked: list[int | BaseException] = []
    registry = threading.Thread(target=lambda: asked.append(_asked(kept)), daemon=True)
    registry.start()
    if (differs := _first_changed(kept["paths"], kept["follow"], kept["stats"])) >= 0:
        raise _Miss(os.fsdecode(kept["paths"].split(b"\0")[differs]))
    t2 = time.perf_counter()
    registry.join()
    t3 = time.perf_counter()
    if isinstance(asked[0], BaseException):
        raise asked[0]
    return _render(args, r, kept, {"startup": t0 - began(), "config": t1 - t0, "hash": t2 - t1, "check": t3 - t2,
                                   "decide": 0.0, "act": 0.0, "retag": 0.0, "build": 0.0, "record": 0.0}, asked[0])


def _asked(kept: Mapping[str, Any]) -> int | BaseException:
    try:
        return _ask_registry(kept)
    except BaseException as exc:  # handed to the main thread, which raises it
        return exc


def _first_changed(paths: bytes, follow: bytes, want: bytes) -> int:
    """The index of the first path whose stat is not the kept one (-1: none), in C where it is built."""
    from .hashing.choose import native

    if native is not None:
        return native.same_stats(paths, follow, want)  # type: ignore[no-any-return]
    kept = array("q")
    kept.frombytes(want)
    for i, (p, f) in enumerate(zip(paths.split(b"\0"), follow, strict=False)):
        try:
            k = _stat(os.fsdecode(p), bool(f))
        except OSError:
            return i
        if (MISSING if k is None else k) != tuple(kept[6 * i:6 * i + 6]):
            return i
    return -1


def _read(path: Path, key_: bytes) -> dict[str, Any]:
    """The kept run of `key_`, if the index has one and the entries it read are as they were."""
    if not (path / "data.mdb").is_file():
        raise _Miss("no index")
    import lmdb

    try:
        env = lmdb.open(str(path), max_dbs=8, subdir=True, readonly=True, lock=True, readahead=False)
    except lmdb.Error as exc:
        raise _Miss(str(exc)) from None
    try:
        with env.begin() as txn:
            try:
                db = env.open_db(DB, txn=txn, create=False)
            except lmdb.NotFoundError:
                raise _Miss("no kept runs") from None
            raw = txn.get(key_, db=db)
            if raw is None:
                raise _Miss("not kept")
            try:
                fmt, kept = marshal.loads(raw)
            except (ValueError, EOFError, TypeError) as exc:  # not what save wrote: run in full
                raise _Miss(f"a damaged kept run ({exc})") from None
            if fmt != FORMAT or not isinstance(kept, dict):
                raise _Miss("another format")
            for name, k, value in kept["index"]:
                try:
                    table = env.open_db(name.encode(), txn=txn, create=False)
                except lmdb.NotFoundError:
                    raise _Miss(f"no {name} table") from None
                if txn.get(k, db=table) != value:
                    raise _Miss(f"the index's {name} entry {k!r} changed")
    finally:
        env.close()
    return kept


def _ask_registry(kept: Mapping[str, Any]) -> int:
    """Ask each of the kept run's registry questions again, a HEAD each; any answer the direct client cannot
    give plainly is a miss. The first alone (it pings the registry), then on two threads a core (each its
    kept-alive connection: a registry near by spends CPU on each answer, and more threads than that only
    wait for the cores), and on as many as the run's registry.concurrency once an answer takes longer than
    SLOW (a registry far away, whose answers are waited for, not worked out)."""
    answers: list[tuple[tuple[str, str, str, str | None], str]] = kept["answers"]
    if not answers:
        return 0
    import threading

    from .manifesthttp import ManifestClient, Unhandled

    ca = kept["caFile"]
    client = ManifestClient(tool=kept["tool"], insecure=kept["insecure"], ca_file=Path(ca) if ca else None,
                            timeout=min(30.0, kept["timeout"]))
    todo = iter(answers)
    lock = threading.Lock()
    changed: list[str] = []
    threads: list[threading.Thread] = []

    def more(n: int) -> None:
        with lock:
            new = [threading.Thread(target=work, daemon=True) for _ in range(min(n, len(answers)) - 1 - len(threads))]
            threads.extend(new)
        for t in new:
            t.start()

    def work(first: bool = False) -> None:
        while not changed:
            with lock:
                item = next(todo, None)
            if item is None:
                return
            (registry, repository, reference, pinned), want = item
            t0 = time.perf_counter()
            try:
                same = client.digest(registry, repository, reference, pinned) == want
            except Unhandled as exc:
                same, reference = False, f"{reference}: {exc}"
            if not same:
                changed.append(f"{registry}/{repository}:{reference}")
            if first:  # pinged: the others may start
                more(min(kept["concurrency"], 2 * len(os.sched_getaffinity(0))))
            elif time.perf_counter() - t0 > SLOW:
                more(kept["concurrency"])
            first = False

    work(first=True)
    while running := [t for t in list(threads) if t.is_alive()]:  # one may start others while it is joined
        for t in running:
            t.join()
    if changed:
        raise _Miss(f"the registry's answer for {changed[0]} changed")
    return len(answers)


def _render(args: argparse.Namespace, r: Console, kept: Mapping[str, Any], phases: dict[str, float],
            calls: int) -> int:
    from . import buildout
    from .events import Event
    from .outcomes import Outcome, Reason, Why
    from .report import ArtifactResult, Report

    results = []
    for name, image, hash_, outcome, reason, digest, saved, tags, deploy_tag in kept["results"]:
        why = None if reason is None else Reason(Why(reason[0]), reason[1], reason[2], reason[3], tuple(reason[4]))
        results.append(ArtifactResult(name=name, image=image, hash=hash_, outcome=Outcome(outcome), reason=why,
                                      digest=digest, saved_seconds=saved, tags=tuple(tags), deploy_tag=deploy_tag))
    for artifact, text in kept["warned"]:
        r(Event("warning", artifact, text))
    r.width = kept["width"]
    rep = Report(tuple(results), phases, kept["tool"], kept["builder"], calls, 0, warnings=tuple(r.warnings),
                 registry_source=kept["toolSource"], builder_source=kept["builderSource"], replayed=True)
    return buildout.render(rep, args, r, kept["order"])

"""The input files of an artifact and its workspace hash (xxh3-128).

The hash takes in (DESIGN.md "Workspace hash"): recipe version, builder kind,
Dockerfile bytes, target, platform, build args, required artifacts' hashes, base
image digests, remote ADD sources, and per input file its context-relative POSIX
path, type, executable bit and content hash (a symlink: its target text).
It leaves out mtimes, owners, other permission bits, absolute paths, the image
name and the registry.

The per-file loops (listing, the stat memo check, reading, the hash's file records) run in C
where reglessbuild/_native.c was built, and in Python here otherwise: the same results, which
a property test holds both to.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import gc
import os
import re
import stat
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Protocol

import xxhash
from e2b_dockerfile_utils import PatternMatcher

from . import forked
from .dockerfile import Analysis, Source
from .errors import DockerfileError, InputError
from .ignore import IgnoreRules

from .native import loops as _native  # the per-file loops in C where built (None: the Python ones below)

RECIPE = "regless-hash/1"
CHUNK = 1 << 20
RACY_SECONDS = 2.0  # a file modified this recently is never memoized (git's racily-clean rule)
PARALLEL_FROM = 4096  # fewer files are hashed in this process: forking costs more than it saves


class InputFile(NamedTuple):  # a tuple: 100,000 of them are made on every run
    path: str  # relative to the context, POSIX separators
    kind: str  # "file" | "symlink"
    executable: bool
    digest: str  # xxh3-128 of the content, or of the symlink's target text


@dataclass(frozen=True)
class Settings:
    builder: str
    dockerfile: bytes
    target: str | None
    platform: str | None
    build_args: tuple[tuple[str, str], ...]
    requires: tuple[tuple[str, str], ...]  # (alias, required artifact's hash)
    bases: tuple[tuple[str, str], ...]  # (FROM text, digest)
    remote: tuple[str, ...]


@dataclass(frozen=True)
class Inputs:
    files: tuple[InputFile, ...]
    settings: Settings
    hash: str
    bytes_read: int  # content bytes hashed (0 when all came from the memo)


StatKey = tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode
MemoDir = dict[str, tuple[StatKey, str]]  # file name -> (stat key, digest), for one folder


class StatMemo(Protocol):
    """The stat memo's read side: one record per folder (absolute path)."""

    def get(self, folder: str) -> MemoDir | None: ...


def _for_native(memo: StatMemo, folder: str) -> MemoDir | bytes | None:
    """A folder's records for the C engine: as the index packs them (no Python objects to make),
    else as a dict (a memo without packed records)."""
    packed = getattr(memo, "packed", None)
    return packed(folder) if packed is not None else memo.get(folder)


class _Entry(NamedTuple):
    rel: str
    abspath: str
    kind: str  # file | dir | symlink
    folder: str  # absolute path of the folder that holds it
    name: str


# ---------------------------------------------------------------- walking


def walk(context: Path, rules: IgnoreRules) -> list[_Entry]:
    """Every entry of the context that .dockerignore leaves in, sorted by path."""
    try:
        return _walk(context, rules)
    except OSError as exc:
        raise InputError(f"cannot list the folder {exc.filename or context} of the build context: "
                         f"{exc.strerror}", hint="make it readable, or leave it out with .dockerignore") from None


def _walk(context: Path, rules: IgnoreRules) -> list[_Entry]:
    matcher = rules.matcher()
    skip = None if matcher is None else _Skipper(matcher)
    if _native is not None:
        entries, in_order = _native.walk(str(context), skip, _Entry)
        if not in_order:  # a name that is not UTF-8: Python's order of str is not the order of the bytes
            entries.sort()
        return entries
    out: list[_Entry] = []
    append, make = out.append, tuple.__new__  # the per-entry loop: 100,000 turns on a large context
    stack = [("", str(context))]
    while stack:
        rel_dir, abs_dir = stack.pop()
        prefix = rel_dir + "/" if rel_dir else ""
        with os.scandir(abs_dir) as it:
            for de in it:
                name = de.name
                rel = prefix + name
                if de.is_dir(follow_symlinks=False):
                    kind = "dir"
                elif de.is_file(follow_symlinks=False):
                    kind = "file"
                elif de.is_symlink():
                    kind = "symlink"
                else:
                    continue  # sockets, fifos, devices: a build cannot copy them
                if skip is not None and (verdict := skip(rel, kind == "dir")):
                    if verdict == 2:
                        stack.append((rel, de.path))  # an exception may re-include something below
                    continue
                append(make(_Entry, (rel, de.path, kind, abs_dir, name)))
                if kind == "dir":
                    stack.append((rel, de.path))
    out.sort()  # by rel: the first field, unique
    return out


class _Skipper:
    """The walk's question to .dockerignore about each entry, asked of folders before what they hold:
    0 keep it, 1 leave it out, 2 leave it out but look below it (an exception may re-include
    something there).

    PatternMatcher.matches(path) tests every pattern against the path and each of its parent folders.
    Like BuildKit's walk (patternmatcher's MatchesUsingParentResults), this keeps each folder's
    per-pattern results, so an entry costs one test per pattern: the same loop as matches(), one depth.
    """

    def __init__(self, matcher: PatternMatcher) -> None:
        self.matcher = matcher
        try:  # the library's compiled patterns (e2b-dockerfile-utils is pinned to 0.1.x)
            self.patterns = [(bool(p.exclusion), p.match) for p in matcher._patterns]
        except AttributeError:  # pragma: no cover - another version: ask matches() each time
            self.patterns = None
        self.none = [False] * len(self.patterns or ())  # no pattern matched: most folders
        self.rules = [match for exclusion, match in self.patterns or () if not exclusion]
        self.folders: dict[str, list[bool]] = {"": self.none}

    def __call__(self, path: str, is_dir: bool) -> int:
        parent = self.folders.get(path.rpartition("/")[0]) if self.patterns is not None else None
        if parent is self.none:  # the common case, quickly: only a rule can match, then no exception can
            for match in self.rules:
                if match(path):
                    break
            else:
                if is_dir:
                    self.folders[path] = self.none
                return 0
        if parent is None:
            matched = self.matcher.matches(path)
        else:
            current: list[bool] = []
            matched = False
            for (exclusion, match), was in zip(self.patterns, parent):
                hit = was  # a pattern that matched a parent folder matches what it holds
                if not hit:
                    if exclusion != matched:  # an exception cannot change an unmatched path, nor a rule a matched one
                        current.append(False)
                        continue
                    hit = bool(match(path))
                current.append(hit)
                if hit:
                    matched = not exclusion
            if is_dir:
                self.folders[path] = current
        if not matched:
            return 0
        return 2 if is_dir and self.matcher.may_match_under(path) else 1


_GLOB_CHARS = re.compile(r"[*?\[\\]")


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Go's filepath.Match as a regex: * and ? stop at /, [...] and [^...] classes, \\ escapes."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            j = pattern.find("]", i + 2)
            if j < 0:
                raise ValueError(f"bad pattern {pattern!r}")
            body = pattern[i + 1:j]
            neg = body.startswith("^")
            body = body[1:] if neg else body
            out.append("[" + ("^" if neg else "") + body.replace("\\", "\\\\") + "]")
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("^" + "".join(out) + "$")


class _Listing(list):  # type: ignore[type-arg]
    """A context's listing shared by the artifacts of a run (collect's `walked`), with select's lookups
    by path made once for all of them rather than once per artifact."""

    @cached_property
    def by_rel(self) -> dict[str, _Entry]:
        return {e.rel: e for e in self}

    @cached_property
    def rels(self) -> list[str]:
        return [e.rel for e in self]


def _below(keys: list[str], entries: list[_Entry], root: str) -> list[_Entry]:
    """Entries strictly below `root`: paths that share a prefix are one run of the sorted keys, from
    `root/` up to `root0` ("0" follows "/"), so the run is one slice."""
    return entries[bisect.bisect_left(keys, root + "/"):bisect.bisect_left(keys, root + "0")]


def _follow(context: Path, entry: _Entry, src: Source, dockerfile: str) -> str:
    """A source that is itself a symlink is followed, as Docker does; it must stay inside the context."""
    real = os.path.realpath(entry.abspath)
    base = os.path.realpath(context)
    if real != base and not real.startswith(base + os.sep):
        raise DockerfileError(f"{src.instruction} source {src.pattern!r} is a symlink to {os.readlink(entry.abspath)!r}, "
                              "outside the build context", path=dockerfile, line=src.line,
                              hint="a build can only read files inside its context")
    return os.path.relpath(real, base).replace(os.sep, "/")


def select(entries: list[_Entry], sources: Iterable[Source], dockerfile: str, context: Path | None = None
           ) -> list[_Entry]:
    """The files and symlinks that the sources reach (directories recursively, --exclude applied)."""
    sources = list(sources)
    if all(src.pattern == "." and not src.excludes for src in sources):  # `COPY . /x`: no lookups needed
        return [e for e in entries if e.kind != "dir"] if sources else []
    chosen: dict[str, _Entry] = {}
    index = entries.by_rel if isinstance(entries, _Listing) else {e.rel: e for e in entries}
    keys = entries.rels if isinstance(entries, _Listing) else [e.rel for e in entries]
    for src in sources:
        excluded = PatternMatcher(list(src.excludes)) if src.excludes else None
        if src.pattern == ".":
            # the whole context: every entry, including those below a folder that .dockerignore
            # excludes while an exception re-includes something inside it
            for e in entries:
                if e.kind != "dir" and not (excluded is not None and excluded.matches(e.rel)):
                    chosen[e.rel] = e
            continue
        if _GLOB_CHARS.search(src.pattern):
            try:
                rx = _glob_regex(src.pattern)
            except ValueError as exc:
                raise DockerfileError(str(exc), path=dockerfile, line=src.line) from exc
            roots = [e.rel for e in entries if rx.match(e.rel)]
        else:  # a folder that .dockerignore excludes may still hold re-included entries
            roots = [src.pattern] if src.pattern in index or _below(keys, entries, src.pattern) else []
        if not roots:
            raise DockerfileError(
                f"{src.instruction} source {src.pattern!r} is not in the build context",
                path=dockerfile, line=src.line,
                hint="check the path, and that .dockerignore does not exclude it",
            )
        for root in roots:
            top = index.get(root, _Entry(root, "", "dir", "", ""))
            reached = [top, *_below(keys, entries, root)]
            if top.kind == "symlink" and context is not None:
                target = _follow(context, top, src, dockerfile)
                if target in index:
                    reached += [index[target], *_below(keys, entries, target)]
            base = root.rsplit("/", 1)[0] + "/" if "/" in root and top.kind != "dir" else root + "/"
            for e in reached:
                if e.kind == "dir":
                    continue
                if excluded is not None and excluded.matches(e.rel[len(base):] if e.rel.startswith(base) else e.rel):
                    continue
                chosen[e.rel] = e
    return [chosen[k] for k in sorted(chosen)]


# ---------------------------------------------------------------- hashing


_NOT_A_FILE = "changed into something that is not a file while regless read it"
_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK  # never a symlink, never wait on a fifo


def _hash_file(abspath: str) -> tuple[str, int, os.stat_result]:
    """(xxh3-128 hex digest, bytes read, the stat of the file that was read). Reads to the end of the
    file, whatever its size was when it was opened."""
    fd = os.open(abspath, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, _NOT_A_FILE)
        want = st.st_size + 1
        if want <= CHUNK:  # most files: one read sized by fstat (a short read is the end of the file)
            data = os.read(fd, want)
            if len(data) < want:
                return xxhash.xxh3_128_hexdigest(data), len(data), st
            h, n = xxhash.xxh3_128(data), len(data)  # it grew since it was opened
        else:
            h, n = xxhash.xxh3_128(), 0
        buf = bytearray(CHUNK)  # reused: a fresh 1 MiB bytes per read costs an mmap and page faults
        view = memoryview(buf)
        while k := os.readv(fd, [buf]):
            h.update(view[:k])
            n += k
        return h.hexdigest(), n, st
    finally:
        os.close(fd)


def _unreadable(e: _Entry, why: str) -> InputError:
    return InputError(f"cannot read {e.rel} of the build context ({e.abspath}): {why}",
                      hint="make it readable, or leave it out with .dockerignore")


Progress = Callable[[int, int], None]  # (files done, bytes read)
_Part = tuple[list[str], list[bool], dict[str, MemoDir], int]  # digests, exec bits, new memo records, bytes read
_NO_RECORDS: MemoDir = {}


def _hash_part(entries: list[_Entry], memo: dict[str, MemoDir], note: Callable[[tuple[int, int]], None] | None
               ) -> _Part:
    """The per-file loop. A file with a memo record is stat-ed and, when size, mtime, ctime and inode all
    match, not read; any other file is opened, fstat-ed and read. So a file is stat-ed once, except one
    whose record no longer matches: by path, then again through its open descriptor."""
    digests: list[str] = []
    execs: list[bool] = []
    records: dict[str, MemoDir] = {}
    read = 0
    now = time.time_ns()
    racy = int(RACY_SECONDS * 1e9)
    lstat, hexdigest = os.lstat, xxhash.xxh3_128_hexdigest
    for i, e in enumerate(entries):
        try:
            if e.kind == "symlink":
                digest, executable = hexdigest(os.readlink(os.fsencode(e.abspath))), False  # the bytes, UTF-8 or not
            else:
                digest = None
                hit = memo.get(e.folder, _NO_RECORDS).get(e.name)
                if hit is not None:  # a record to check: stat the path, read nothing if it matches
                    st = lstat(e.abspath)
                    key = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
                    # checked here, not when the record is read: a damaged record is a miss, never a digest
                    if type(hit) is tuple and len(hit) == 2 and hit[0] == key and type(hit[1]) is str:
                        digest = hit[1]
                if digest is None:  # no record, or a stale one: read it, keyed by the stat of what was read
                    digest, n, st = _hash_file(e.abspath)
                    read += n
                    if now - st.st_mtime_ns > racy and now - st.st_ctime_ns > racy:
                        records.setdefault(e.folder, {})[e.name] = (
                            (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino), digest)
                executable = bool(st.st_mode & 0o100)
        except OSError as exc:
            raise _unreadable(e, exc.strerror) from None
        digests.append(digest)
        execs.append(executable)
        if note is not None and i & 1023 == 1023:
            note((i + 1, read))
    return digests, execs, records, read


class LayeredMemo:
    """A stat memo seen through the records made earlier in the same run, so that a file that several
    artifacts read is read once (the index gets the records only when the run has hashed everything)."""

    def __init__(self, base: StatMemo | None, fresh: dict[str, MemoDir]) -> None:
        self.base = base
        self.fresh = fresh

    def get(self, folder: str) -> MemoDir | None:
        old = self.base.get(folder) if self.base is not None else None
        new = self.fresh.get(folder)
        if new is None:
            return old
        return {**old, **new} if old else new

    def packed(self, folder: str) -> MemoDir | bytes | None:
        if folder in self.fresh or self.base is None:
            return self.get(folder)
        return _for_native(self.base, folder)


def merge_records(into: dict[str, MemoDir], records: dict[str, MemoDir]) -> None:
    """Add memo records folder by folder (two artifacts may read different files of one folder)."""
    for folder, names in records.items():
        into.setdefault(folder, {}).update(names)


def hash_files(entries: list[_Entry], memo: StatMemo | None, *, progress: Progress | None = None
               ) -> tuple[list[InputFile], dict[str, MemoDir], int]:
    """Hash each entry; returns the files, new memo records (by folder), and bytes read.

    The C engine runs one thread per core (up to 8) with the GIL released. The Python one, from
    PARALLEL_FROM files on, deals the entries round-robin to this process and one forked child per
    other core (forked.py says why not threads).
    """
    n = min(forked.cpus(), 8)
    known: dict[str, Any] = {}  # folder -> its records (the C engine also takes them packed)
    if memo is not None:
        get = memo.get if _native is None else (lambda folder: _for_native(memo, folder))
        for folder in {e.folder for e in entries}:
            if (m := get(folder)) is not None:
                known[folder] = m
    if _native is not None:
        return _hash_native(entries, known, n, progress)
    if len(entries) < PARALLEL_FROM or n < 2:
        note = None if progress is None else (lambda d: progress(*d))
        parts = [_hash_part(entries, known, note)]
        deal = 1
    else:
        deal = n
        done = [(0, 0)] * n

        def on_note(i: int, d: tuple[int, int]) -> None:
            done[i] = d
            if progress is not None:
                progress(sum(x[0] for x in done), sum(x[1] for x in done))

        parts = forked.fork_map(lambda chunk, note: _hash_part(chunk, known, note),
                                [entries[i::n] for i in range(n)], on_note)
    digests: list[str] = [""] * len(entries)
    execs: list[bool] = [False] * len(entries)
    records: dict[str, MemoDir] = {}
    read = 0
    for i, (d, x, r, k) in enumerate(parts):
        digests[i::deal] = d
        execs[i::deal] = x
        merge_records(records, r)
        read += k
    files = [InputFile(e.rel, "symlink" if e.kind == "symlink" else "file", x, d)
             for e, x, d in zip(entries, execs, digests)]
    return files, records, read


def _hash_native(entries: list[_Entry], known: dict[str, MemoDir | bytes], threads: int, progress: Progress | None
                 ) -> tuple[list[InputFile], dict[str, MemoDir], int]:
    """_hash_part's loop in C, on `threads` threads, with the InputFiles made there too."""
    assert _native is not None
    out = _native.hash(entries if type(entries) is list else list(entries), known, time.time_ns(),
                       int(RACY_SECONDS * 1e9), threads, InputFile, progress)
    if out[0] is None:
        e, err = entries[out[1]], out[2]
        raise _unreadable(e, _NOT_A_FILE if err == errno.EINVAL else os.strerror(err))
    files, records, read, _opened = out
    return files, records, read


def _field(h: "xxhash.xxh3_128", *parts: str | bytes) -> None:
    for p in parts:
        b = p.encode() if isinstance(p, str) else p
        h.update(_le(len(b)))
        h.update(b)


def workspace_hash(settings: Settings, files: Iterable[InputFile]) -> str:
    h = xxhash.xxh3_128()
    _field(h, RECIPE, "builder", settings.builder, "dockerfile", settings.dockerfile)
    _field(h, "target", settings.target or "", "platform", settings.platform or "")
    for k, v in sorted(settings.build_args):
        _field(h, "arg", k, v)
    for alias, dep in sorted(settings.requires):
        _field(h, "requires", alias, dep)
    for text, digest in sorted(settings.bases):
        _field(h, "base", text, digest)
    for url in settings.remote:
        _field(h, "remote", url)
    # the files as one buffer: the same bytes as _field(h, "file", path, kind, x, digest) for each,
    # without five update calls per file; a path as its bytes on disk (UTF-8, unless a name is not)
    if _native is not None:
        h.update(_native.section(files if isinstance(files, (list, tuple)) else list(files)))
        return h.hexdigest()
    le = _le
    h.update(b"".join(b"".join((_FILE, le(len(p := os.fsencode(f.path))), p, _KIND[f.kind], _EXEC[f.executable],
                                le(len(d := f.digest.encode())), d)) for f in files))
    return h.hexdigest()


def _le(n: int) -> bytes:
    return n.to_bytes(8, "little")


_FILE = _le(4) + b"file"
_KIND = {k: _le(len(k)) + k.encode() for k in ("file", "symlink")}
_EXEC = {True: _le(1) + b"x", False: _le(1) + b"-"}


def collect(context: Path, dockerfile: Path, analysis: Analysis, rules: IgnoreRules,
            memo: StatMemo | None, progress: Progress | None = None,
            walked: dict[tuple[Path, tuple[str, ...]], list[_Entry]] | None = None
            ) -> tuple[list[InputFile], dict[str, MemoDir], int]:
    """The input files of one artifact, hashed. `walked` shares context listings between the artifacts of a run."""
    with _no_gc():
        return _collect(context, dockerfile, analysis, rules, memo, progress, walked)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Listing 100,000 files makes 100,000 objects, none of them cyclic: without this, the cycle
    collector runs hundreds of times over a growing heap (measured: a third of the walk's time)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _collect(context: Path, dockerfile: Path, analysis: Analysis, rules: IgnoreRules,
             memo: StatMemo | None, progress: Progress | None,
             walked: dict[tuple[Path, tuple[str, ...]], list[_Entry]] | None
             ) -> tuple[list[InputFile], dict[str, MemoDir], int]:
    if not analysis.sources:
        entries: list[_Entry] = []
    elif walked is None:
        entries = walk(context, rules)
    else:
        key = (context, rules.patterns)
        if key not in walked:
            walked[key] = _Listing(walk(context, rules))
        entries = walked[key]
    picked = select(entries, analysis.sources, str(dockerfile), context)
    return hash_files(picked, memo, progress=progress)

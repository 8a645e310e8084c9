"""The input files of an artifact and its workspace hash (xxh3-128).

The hash takes in (DESIGN.md "Workspace hash"): recipe version, builder kind,
Dockerfile bytes, target, platform, build args, required artifacts' hashes, base
image digests, remote ADD sources, and per input file its context-relative POSIX
path, type, executable bit and content hash (a symlink: its target text).
It leaves out mtimes, owners, other permission bits, absolute paths, the image
name and the registry.
"""

from __future__ import annotations

import bisect
import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Protocol

import xxhash
from e2b_dockerfile_utils import PatternMatcher

from .dockerfile import Analysis, Source
from .errors import DockerfileError
from .ignore import IgnoreRules

RECIPE = "regless-hash/1"
CHUNK = 1 << 20
RACY_SECONDS = 2.0  # a file modified this recently is never memoized (git's racily-clean rule)


@dataclass(frozen=True)
class InputFile:
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


class StatMemo(Protocol):
    def get(self, key: bytes) -> bytes | None: ...


@dataclass(frozen=True)
class _Entry:
    rel: str
    abspath: str
    kind: str  # file | dir | symlink


# ---------------------------------------------------------------- walking


def walk(context: Path, rules: IgnoreRules) -> list[_Entry]:
    """Every entry of the context that .dockerignore leaves in, sorted by path."""
    matcher = rules.matcher()
    out: list[_Entry] = []
    stack = [("", str(context))]
    while stack:
        rel_dir, abs_dir = stack.pop()
        with os.scandir(abs_dir) as it:
            for de in it:
                rel = f"{rel_dir}/{de.name}" if rel_dir else de.name
                is_link = de.is_symlink()
                is_dir = not is_link and de.is_dir(follow_symlinks=False)
                if matcher is not None and matcher.matches(rel):
                    if is_dir and matcher.may_match_under(rel):
                        stack.append((rel, de.path))  # an exception may re-include something below
                    continue
                kind = "symlink" if is_link else "dir" if is_dir else "file" if de.is_file(follow_symlinks=False) else ""
                if not kind:
                    continue  # sockets, fifos, devices: a build cannot copy them
                out.append(_Entry(rel, de.path, kind))
                if is_dir:
                    stack.append((rel, de.path))
    out.sort(key=lambda e: e.rel)
    return out


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


def _below(keys: list[str], entries: list[_Entry], root: str) -> Iterable[_Entry]:
    """Entries strictly below `root`: paths that share a prefix are one run of the sorted keys."""
    prefix = root + "/"
    i = bisect.bisect_left(keys, prefix)
    while i < len(keys) and keys[i].startswith(prefix):
        yield entries[i]
        i += 1


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
    chosen: dict[str, _Entry] = {}
    index = {e.rel: e for e in entries}
    keys = [e.rel for e in entries]
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
            roots = [src.pattern] if src.pattern in index or next(_below(keys, entries, src.pattern), None) else []
        if not roots:
            raise DockerfileError(
                f"{src.instruction} source {src.pattern!r} is not in the build context",
                path=dockerfile, line=src.line,
                hint="check the path, and that .dockerignore does not exclude it",
            )
        for root in roots:
            top = index.get(root, _Entry(root, "", "dir"))
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


def _memo_key(st: os.stat_result) -> bytes:
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}".encode()


def _hash_file(abspath: str) -> tuple[str, int]:
    with open(abspath, "rb", buffering=0) as f:
        if os.fstat(f.fileno()).st_size <= CHUNK:  # most files: one read sized by fstat, one hash call
            data = f.read()
            return xxhash.xxh3_128_hexdigest(data), len(data)
        h = xxhash.xxh3_128()
        n = 0
        while chunk := f.read(CHUNK):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


Progress = Callable[[int, int], None]  # (files done, bytes read)


def hash_files(entries: list[_Entry], memo: StatMemo | None, *, progress: Progress | None = None) -> tuple[list[InputFile], dict[bytes, bytes], int]:
    """Hash each entry; returns the files, new memo records, and bytes read."""
    results: dict[str, InputFile] = {}
    todo: list[tuple[_Entry, os.stat_result]] = []
    now_ns = time.time_ns()
    for e in entries:
        st = os.lstat(e.abspath)
        execb = bool(st.st_mode & stat.S_IXUSR)
        if e.kind == "symlink":
            target = os.readlink(e.abspath)
            results[e.rel] = InputFile(e.rel, "symlink", False, xxhash.xxh3_128_hexdigest(target.encode()))
            continue
        cached = memo.get(e.abspath.encode()) if memo is not None else None
        if cached is not None:
            key, _, digest = cached.decode().rpartition("=")
            if key == _memo_key(st).decode():
                results[e.rel] = InputFile(e.rel, "file", execb, digest)
                continue
        todo.append((e, st))
    new_memo: dict[bytes, bytes] = {}
    read = 0
    # one thread: measured here (tests/bench/hashing.py), threads only add GIL contention for the
    # typical small file, while one loop reads and hashes at about the speed of the page cache
    racy_ns = RACY_SECONDS * 1e9
    for done, (e, st) in enumerate(todo):
        digest, n = _hash_file(e.abspath)
        read += n
        if progress is not None and done % 512 == 511:
            progress(len(entries) - len(todo) + done + 1, read)
        results[e.rel] = InputFile(e.rel, "file", bool(st.st_mode & stat.S_IXUSR), digest)
        if now_ns - st.st_mtime_ns > racy_ns and now_ns - st.st_ctime_ns > racy_ns:
            new_memo[e.abspath.encode()] = _memo_key(st) + b"=" + digest.encode()
    return [results[e.rel] for e in entries], new_memo, read


def _field(h: "xxhash.xxh3_128", *parts: str | bytes) -> None:
    for p in parts:
        b = p.encode() if isinstance(p, str) else p
        h.update(len(b).to_bytes(8, "little"))
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
    for f in files:
        _field(h, "file", f.path, f.kind, "x" if f.executable else "-", f.digest)
    return h.hexdigest()


def collect(context: Path, dockerfile: Path, analysis: Analysis, rules: IgnoreRules,
            memo: StatMemo | None, progress: Progress | None = None,
            walked: dict[tuple[Path, tuple[str, ...]], list[_Entry]] | None = None
            ) -> tuple[list[InputFile], dict[bytes, bytes], int]:
    """The input files of one artifact, hashed. `walked` shares context listings between the artifacts of a run."""
    if not analysis.sources:
        entries: list[_Entry] = []
    elif walked is None:
        entries = walk(context, rules)
    else:
        key = (context, rules.patterns)
        if key not in walked:
            walked[key] = walk(context, rules)
        entries = walked[key]
    picked = select(entries, analysis.sources, str(dockerfile), context)
    return hash_files(picked, memo, progress=progress)

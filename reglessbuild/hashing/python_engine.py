"""The Python engine: the port's loops in Python, for where reglessbuild/_native was not built.

It gives what the C engine gives (a property test holds both to the same listing, records and hash),
in one process: Python threads would serialize on the GIL over these per-file loops.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Sequence
from pathlib import Path

import xxhash

from . import recipe, statmemo
from .ignore import IgnoreRules, Verdict, skipper
from .port import Entry, Hashed, InputFile, MemoDir, Progress, StatMemo, unreadable

CHUNK = 1 << 20
_OPEN_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK  # never a symlink, never wait on a fifo
_NO_RECORDS: MemoDir = {}


def hash_file(abspath: str) -> tuple[str, int, os.stat_result]:
    """(xxh3-128 hex digest, bytes read, the stat of the file that was read). Reads to the end of the
    file, whatever its size was when it was opened. Raises OSError (EINVAL: not a regular file)."""
    fd = os.open(abspath, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
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


class PythonEngine:
    """The port in Python."""

    name = "python"

    def walk(self, context: Path, rules: IgnoreRules) -> list[Entry]:
        """Every entry the rules leave in, sorted by path; folders are listed with os.scandir."""
        skip = skipper(rules)
        out: list[Entry] = []
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
                        if verdict is Verdict.LOOK_BELOW:  # an exception may re-include something below
                            stack.append((rel, de.path))
                        continue
                    append(make(Entry, (rel, de.path, kind, abs_dir, name)))
                    if kind == "dir":
                        stack.append((rel, de.path))
        out.sort()  # by rel: the first field, unique
        return out

    def hash(self, entries: list[Entry], memo: StatMemo | None, progress: Progress | None) -> Hashed:
        """A file with a memo record is stat-ed and, when size, mtime, ctime and inode all match, not
        read; any other file is opened, fstat-ed and read. So a file is stat-ed once, except one whose
        record no longer matches: by path, then again through its open descriptor."""
        known: dict[str, MemoDir] = {}
        if memo is not None:
            for folder in {e.folder for e in entries}:
                if (m := memo.get(folder)) is not None:
                    known[folder] = m
        files: list[InputFile] = []
        records: dict[str, MemoDir] = {}
        read = 0
        now = time.time_ns()
        racy = int(statmemo.RACY_SECONDS * 1e9)
        lstat, hexdigest, make = os.lstat, xxhash.xxh3_128_hexdigest, tuple.__new__
        for i, e in enumerate(entries):
            try:
                if e.kind == "symlink":  # its target's bytes, UTF-8 or not
                    digest, executable = hexdigest(os.readlink(os.fsencode(e.abspath))), False
                else:
                    digest = None
                    hit = known.get(e.folder, _NO_RECORDS).get(e.name)
                    if hit is not None:  # a record to check: stat the path, read nothing if it matches
                        st = lstat(e.abspath)
                        key = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
                        if type(hit) is tuple and len(hit) == 2 and hit[0] == key and type(hit[1]) is str:
                            digest = hit[1]
                    if digest is None:  # no record, or a stale one: read it, keyed by the stat of what was read
                        digest, n, st = hash_file(e.abspath)
                        read += n
                        if now - st.st_mtime_ns > racy and now - st.st_ctime_ns > racy:
                            records.setdefault(e.folder, {})[e.name] = (
                                (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino), digest)
                    executable = bool(st.st_mode & 0o100)
            except OSError as exc:
                raise unreadable(e, exc.errno or errno.EIO) from None
            files.append(make(InputFile, (e.rel, "symlink" if e.kind == "symlink" else "file", executable, digest)))
            if progress is not None and i & 1023 == 1023:
                progress(i + 1, read)
        return Hashed(files, records, read)

    def encode_files(self, files: Sequence[InputFile]) -> bytes:
        """recipe.encode_files."""
        return recipe.encode_files(files)

    def pack_memo(self, names: MemoDir) -> bytes:
        """statmemo.pack."""
        return statmemo.pack(names)

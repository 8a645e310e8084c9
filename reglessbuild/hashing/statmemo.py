"""The stat memo: which files need not be read again, and the one format its records are kept in.

A file's record is its stat key (size, mtime_ns, ctime_ns, inode) and digest; a file whose stat key
still matches is not read. Records are kept per folder, so a run makes one index lookup per folder.
A record is checked where it is used, not when it is read: a damaged record is a miss, never a digest.

The index stores a folder's records packed (`pack`), so that the C engine looks names up in the bytes
as LMDB gives them without making Python objects: version byte 2, u32 count, then per file (sorted by
name bytes) u32 name offset, u32 name length (into the names that follow the entries), i64 size,
mtime_ns, ctime_ns, u64 inode and the 16 bytes of its xxh3-128; then the names, as bytes on disk.
reglessbuild/csrc/memo.c reads and writes the same bytes (a property test holds them to it).
"""

from __future__ import annotations

import os
import struct

from .port import MemoDir, StatMemo

RACY_SECONDS = 2.0  # a file modified this recently is never memoized (git's racily-clean rule)
VERSION = b"\x02"
HEAD = struct.Struct("<I")
ENTRY = struct.Struct("<IIqqqQ16s")


def pack(names: MemoDir) -> bytes:
    """A folder's records ({file name: ((size, mtime_ns, ctime_ns, inode), digest hex)}) as bytes; a
    damaged record is dropped, never written."""
    rows: list[tuple[bytes, int, int, int, int, bytes]] = []
    for name, rec in names.items():
        try:
            (size, mtime, ctime, ino), digest = rec
            if type(name) is not str or type(digest) is not str or len(digest) != 32:
                continue
            row = (os.fsencode(name), size, mtime, ctime, ino, bytes.fromhex(digest))
            ENTRY.pack(0, 0, *row[1:])  # raises on a value that does not fit
            if len(row[5]) != 16:
                continue
            rows.append(row)
        except (TypeError, ValueError, struct.error):
            continue
    rows.sort()
    entries: list[bytes] = []
    blob: list[bytes] = []
    at = 0
    for raw_name, size, mtime, ctime, ino, raw_digest in rows:
        entries.append(ENTRY.pack(at, len(raw_name), size, mtime, ctime, ino, raw_digest))
        blob.append(raw_name)
        at += len(raw_name)
    return b"".join((VERSION, HEAD.pack(len(rows)), *entries, *blob))


def unpack(raw: bytes | None) -> MemoDir | None:
    """A folder's records, or None when there are none, or they are of another version or damaged (then
    its files are read)."""
    if raw is None or not raw.startswith(VERSION) or len(raw) < 5:
        return None
    try:
        (count,) = HEAD.unpack_from(raw, 1)
        names_at = 5 + count * ENTRY.size
        if names_at > len(raw):
            return None
        out = {}
        for off, length, size, mtime, ctime, ino, digest in ENTRY.iter_unpack(raw[5:names_at]):
            if names_at + off + length > len(raw):
                return None
            name = os.fsdecode(raw[names_at + off:names_at + off + length])
            out[name] = ((size, mtime, ctime, ino), digest.hex())
        return out
    except struct.error:
        return None


def packed_or_records(memo: StatMemo, folder: str) -> MemoDir | bytes | None:
    """A folder's records as the memo keeps them: packed where it offers them so (the index), else as a
    dict. The C engine reads either; packed ones cost no Python objects."""
    packed = getattr(memo, "packed", None)
    return packed(folder) if packed is not None else memo.get(folder)


def merge_records(into: dict[str, MemoDir], records: dict[str, MemoDir]) -> None:
    """Add memo records folder by folder (two artifacts may read different files of one folder)."""
    for folder, names in records.items():
        into.setdefault(folder, {}).update(names)


class LayeredMemo:
    """A stat memo seen through the records made earlier in the same run, so that a file that several
    artifacts read is read once (the index gets the records only when the run has hashed everything)."""

    def __init__(self, base: StatMemo | None, fresh: dict[str, MemoDir]) -> None:
        self.base = base
        self.fresh = fresh

    def get(self, folder: str) -> MemoDir | None:
        """The base's records of the folder with this run's on top."""
        old = self.base.get(folder) if self.base is not None else None
        new = self.fresh.get(folder)
        if new is None:
            return old
        return {**old, **new} if old else new

    def packed(self, folder: str) -> MemoDir | bytes | None:
        """The base's packed record where this run made none for the folder, else the records."""
        if folder in self.fresh or self.base is None:
            return self.get(folder)
        return packed_or_records(self.base, folder)

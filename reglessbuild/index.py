"""The LMDB index: results by workspace hash, the file-stat memo, last inputs per artifact.

One environment in the cache dir; each write is one transaction; every record
carries a format version. A file LMDB cannot read is moved aside and replaced.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import lmdb

from . import witness
from .errors import IndexError_
from .hashing import statmemo
from .hashing.choose import engine

if TYPE_CHECKING:
    from .indexaside import Moved

FORMAT = 1
MAP_SIZE = 1 << 30  # virtual: the file grows with use
T = TypeVar("T")


@dataclass(frozen=True)
class Result:
    """What a workspace hash was built into: the image's digest and the references known to carry it. An
    entry is what lets a later run skip the build (or retag instead of rebuilding)."""

    digest: str
    refs: tuple[str, ...]  # references known to carry the digest, IMAGE:HASH first
    builder: str
    built_at: float
    build_seconds: float = 0.0  # how long the build took: the saving of every later hit

    def with_ref(self, ref: str) -> Result:
        """The same result with one more reference carrying the digest (after a retag), each listed once."""
        refs = self.refs if ref in self.refs else (*self.refs, ref)
        return Result(self.digest, refs, self.builder, self.built_at, self.build_seconds)


def result_to_json(result: Result) -> dict[str, Any]:
    """The one JSON encoding of a Result: what the index stores and `cache ls/show/export` write."""
    return {"digest": result.digest, "refs": list(result.refs), "builder": result.builder,
            "builtAt": result.built_at, "buildSeconds": result.build_seconds}


def result_from_json(rec: dict[str, Any]) -> Result:
    """The one reader of that encoding (also of the snake_case keys that earlier versions stored and
    exported: built_at, build_seconds). Raises KeyError, TypeError or ValueError on a bad record."""
    built_at = rec["builtAt"] if "builtAt" in rec else rec["built_at"]
    seconds = rec.get("buildSeconds", rec.get("build_seconds", 0.0))
    if not isinstance(rec["refs"], list):
        raise TypeError("refs is not a list")
    return Result(rec["digest"], tuple(rec["refs"]), str(rec.get("builder", "unknown")), float(built_at),
                  float(seconds))


# the tables whose entries a run's results depend on: a replay (replay.py) reads again the ones a kept run
# read (the stat memo and the parse memo only spare work: their entries are checked against the files)
WITNESSED = ("results", "inputs")
_CHANGED = b"\0changed"  # an artifact's key in the inputs table + this: when its inputs last changed
DB_NAMES = ("results", "memo", "inputs", "meta", "parses", "replays")  # parses: parsememo.py; replays: replay.py
OLD_DBS = (b"stat",)  # the per-file stat memo of earlier versions: dropped on open


class _Foreign(Exception):
    """An index written in another format."""


_CORRUPT = (lmdb.InvalidError, lmdb.CorruptedError, lmdb.VersionMismatchError, lmdb.IncompatibleError,
            lmdb.PageNotFoundError, lmdb.BadRslotError, lmdb.BadTxnError, lmdb.BadValsizeError)
_META_MAGIC = 0xBEEFC0DE


def _check_dir(cache_dir: Path) -> None:
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise IndexError_(f"cache dir {cache_dir} is not a folder",
                          hint="pass --cache-dir DIR (or set REGLESS_CACHE_DIR) to a folder") from exc
    except OSError as exc:
        raise IndexError_(f"cannot create cache dir {cache_dir}: {exc.strerror}",
                          hint="pass --cache-dir DIR with a writable folder") from exc
    probe = cache_dir / f".write-test-{os.getpid()}"
    try:  # os.access says yes to root even on a read-only mount: try for real
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise IndexError_(f"cache dir {cache_dir} is not writable ({exc.strerror})",
                          hint="pass --cache-dir DIR with a writable folder") from exc


def inspect_data_file(data: Path) -> str | None:
    """Why LMDB must not map this file, or None. A truncated file would kill the process with SIGBUS.

    The header is read before the size: another run may be writing (Index.open's lock orders opens, not
    writes), and LMDB writes a transaction's pages before the meta page that names them, so a size read
    after the meta covers its pages. Read the other way round, a commit in between made a whole index
    look truncated, and it was set aside with every other run's entries."""
    try:
        with open(data, "rb") as f:
            head = f.read(2 * 65536)
        size = data.stat().st_size
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IndexError_(f"cannot read the index {data}: {exc.strerror}") from exc
    if size == 0:
        return None  # LMDB initialises an empty file
    if len(head) < 160 or struct.unpack_from("<I", head, 16)[0] != _META_MAGIC:
        return "not an LMDB file"
    psize = struct.unpack_from("<I", head, 40)[0]  # meta[0].mm_dbs[FREE_DBI].md_pad holds the page size
    if psize < 512 or psize > 65536 or psize & (psize - 1) or size < 2 * psize:
        return "truncated or damaged header"
    metas = []
    for off in (0, psize):
        magic = struct.unpack_from("<I", head, off + 16)[0]
        last_pg, txnid = struct.unpack_from("<QQ", head, off + 136)
        if magic == _META_MAGIC:
            metas.append((txnid, last_pg))
    if not metas:
        return "not an LMDB file"
    _, last_pg = max(metas)
    if size < (last_pg + 1) * psize:
        return f"truncated: {size} bytes, its pages need {(last_pg + 1) * psize}"
    return None


def _set_aside(path: Path, reason: str) -> Moved:
    """Move a damaged or foreign index aside (indexaside.py, imported only then: its Moved is not created
    by a run that opens a sound index)."""
    from .indexaside import set_aside

    return set_aside(path, reason)


@contextlib.contextmanager
def _opening(lock: Path) -> Iterator[None]:
    """Hold an exclusive flock on `lock` (made if missing) for the block."""
    try:
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
    except OSError as exc:
        raise IndexError_(f"cannot open {lock}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@dataclass
class Index:
    """The cache dir's LMDB environment: workspace hash -> Result, the stat memo, each artifact's last
    inputs. One object per run, shared by its threads; every write is one transaction, so concurrent runs
    on one cache dir see whole records."""

    path: Path
    env: lmdb.Environment
    moved: list[Moved] = field(default_factory=list)
    dbs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # handles are opened once, outside any transaction: open_db inside a write
        # transaction would start a second writer in the same thread and hang
        self.dbs = {name: self.env.open_db(name.encode()) for name in DB_NAMES}
        with self.env.begin() as txn:
            old = [name for name in OLD_DBS if txn.get(name) is not None]
        for name in old:
            db = self.env.open_db(name)

            def drop(txn: lmdb.Transaction[bytes], db: Any = db) -> None:
                txn.drop(db, delete=True)

            self.write(drop)

    # -------------------------------------------------- opening

    @classmethod
    def open(cls, cache_dir: Path) -> Index:
        """The index under `cache_dir` (made if missing). A file LMDB must not map (truncated, foreign,
        corrupt) is moved aside and a new one made, listed in `moved` for the run to warn about.

        Runs that open one cache dir at once take turns here (an flock on `index.lock` beside the index):
        one run's index being made, its data file not yet whole, looked damaged to another, which set it
        aside with what the first then wrote."""
        _check_dir(cache_dir)
        path = cache_dir / "index"
        moved: list[Moved] = []
        with _opening(cache_dir / "index.lock"):
            problem = inspect_data_file(path / "data.mdb")
            if problem:
                moved.append(_set_aside(path, problem))
            try:
                index = cls._open_checked(path)
            except (*_CORRUPT, _Foreign) as exc:
                moved.append(_set_aside(path, str(exc) if isinstance(exc, _Foreign) else
                                         f"LMDB: {str(exc).split(':')[0]}"))
                index = cls._open_checked(path)
        index.moved = moved
        index.env.reader_check()  # clear reader slots of processes that died holding them
        return index

    @classmethod
    def _open_checked(cls, path: Path) -> Index:
        env = lmdb.open(str(path), map_size=MAP_SIZE, max_dbs=8, subdir=True, readahead=False)
        try:
            index = cls(path, env)
            raw = index._read("meta", b"format")
            if raw is None:
                index.write(lambda txn: txn.put(b"format", str(FORMAT).encode(), db=index._db("meta")))
            elif raw != str(FORMAT).encode():
                raise _Foreign(f"index format {raw.decode(errors='replace')!r}: this regless reads format {FORMAT}")
        except BaseException:
            env.close()
            raise
        return index

    def close(self) -> None:
        """Close the environment (the run's end): LMDB releases its reader slots and the map."""
        self.env.close()

    def _db(self, name: str) -> Any:
        return self.dbs[name]

    def write(self, fn: Callable[[lmdb.Transaction[bytes]], T]) -> T:
        """`fn` in one write transaction (again in a larger map when the map is full); what it returns."""
        while True:
            try:
                with self.env.begin(write=True) as txn:
                    return fn(txn)
            except lmdb.MapFullError:
                self.env.set_mapsize(self.env.info()["map_size"] * 2)
            except lmdb.MapResizedError:
                self.env.set_mapsize(0)

    def _read(self, db: str, key: bytes) -> bytes | None:
        if db in WITNESSED and (w := witness.current()) is not None:
            w.index_reads.add((db, key))
        try:
            with self.env.begin(db=self._db(db)) as txn:
                return txn.get(key)
        except lmdb.MapResizedError:
            self.env.set_mapsize(0)
            return self._read(db, key)

    # -------------------------------------------------- results

    def get(self, hash_: str) -> Result | None:
        """The result recorded for a workspace hash, or None (never recorded, or a record not trusted)."""
        raw = self._read("results", hash_.encode())
        if raw is None:
            return None
        return _decode(raw)

    def put(self, hash_: str, result: Result) -> None:
        """Keep `result` for `hash_`, unless it is there already: a restart with nothing changed records
        every artifact's result again, and a write transaction is a disk flush."""
        data = _encode(result)
        if self._read("results", hash_.encode()) == data:
            return
        self.write(lambda txn: txn.put(hash_.encode(), data, db=self._db("results")))

    def drop(self, hash_: str) -> bool:
        """Remove one entry (a stale one: its image is gone from the registry); True if it was there."""
        return bool(self.drop_many([hash_]))

    def drop_many(self, hashes: list[str]) -> list[str]:
        """Remove these entries in one transaction; returns those that were there."""

        def run(txn: lmdb.Transaction[bytes]) -> list[str]:
            return [h for h in hashes if txn.delete(h.encode(), db=self._db("results"))]

        return self.write(run)

    def merge_many(self, results: dict[str, Result]) -> tuple[int, int]:
        """Record many entries in one transaction, merging with what is there.

        Same digest: references are united. Another digest: the entry already
        here is kept (it was checked by this machine). Returns (written, conflicts).
        """

        def run(txn: lmdb.Transaction[bytes]) -> tuple[int, int]:
            written = conflicts = 0
            db = self._db("results")
            for h, new in results.items():
                raw = txn.get(h.encode(), db=db)
                old = _decode(raw) if raw is not None else None
                if old is not None and old.digest != new.digest:
                    conflicts += 1
                    continue
                if old is not None:
                    for ref in new.refs:
                        old = old.with_ref(ref)
                    new = old
                txn.put(h.encode(), _encode(new), db=db)
                written += 1
            return written, conflicts

        return self.write(run)

    def items(self) -> Iterator[tuple[str, Result]]:
        """Every (hash, result) recorded, read in one transaction (`regless cache ls`, export, prune)."""
        with self.env.begin(db=self._db("results")) as txn:
            rows = list(txn.cursor())
        for k, raw in rows:
            r = _decode(raw)
            if r is not None:
                yield k.decode(), r

    # -------------------------------------------------- stat memo

    def memo(self) -> _MemoView:
        """The stat memo for one hashing pass, as one read transaction; close it (or use `with`) after."""
        return _MemoView(self)

    def memo_put(self, records: dict[str, dict[str, Any]]) -> None:
        """Merge memo records (folder -> file name -> (stat key, digest)) into what is there.

        The read and the write of each folder's record share one write transaction, so
        two runs that add different files of one folder at once keep both.
        """
        if not records:
            return
        pack = engine().pack_memo  # statmemo's format, made by the engine that hashes

        def put_all(txn: lmdb.Transaction[bytes]) -> None:
            db = self._db("memo")
            for folder, names in records.items():
                key = folder.encode(errors="surrogateescape")
                merged = statmemo.unpack(txn.get(key, db=db)) or {}
                merged.update(names)
                txn.put(key, pack(merged), db=db)

        self.write(put_all)

    # -------------------------------------------------- Dockerfile analyses (parsememo.py)

    def parse_get(self, key: bytes) -> bytes | None:
        """The analysis record kept under `key`, or None."""
        return self._read("parses", key)

    def parses_put(self, records: dict[bytes, bytes]) -> None:
        """Keep analysis records, all in one transaction."""
        self.write(lambda txn: [txn.put(k, v, db=self._db("parses")) for k, v in records.items()])

    # -------------------------------------------------- last inputs per artifact

    def last_inputs(self, artifact: str) -> dict[str, Any] | None:
        """The artifact's last recorded inputs (what `explain` compares with), or None when there are none
        of this format."""
        raw = self._read("inputs", artifact.encode())
        if raw is None:
            return None
        rec = json.loads(raw)
        return rec if rec.get("v") == FORMAT else None

    def put_inputs(self, artifact: str, hash_: str, record: Callable[[], dict[str, Any]]) -> None:
        """Keep `record()` as the artifact's last inputs, unless they are already those of `hash_`: a
        restart with nothing changed does not serialise every input file again. When they change, the
        time of it too (changed_since)."""
        mark = artifact.encode() + b"\0hash"
        if self._read("inputs", mark) == hash_.encode():
            return
        data = json.dumps({"v": FORMAT, **record()}, sort_keys=True).encode()

        def put(txn: lmdb.Transaction[bytes]) -> None:
            txn.put(artifact.encode(), data, db=self._db("inputs"))
            txn.put(mark, hash_.encode(), db=self._db("inputs"))
            txn.put(artifact.encode() + _CHANGED, repr(time.time()).encode(), db=self._db("inputs"))

        self.write(put)

    def changed_since(self, artifacts: list[str]) -> dict[str, float]:
        """When each of `artifacts` last had new inputs recorded (put_inputs), as a Unix time, for those
        this index knows: which artifacts a user is changing now, to hash first (run.recent_first)."""
        found: dict[str, float] = {}
        for a in artifacts:
            with contextlib.suppress(ValueError):
                if (raw := self._read("inputs", a.encode() + _CHANGED)) is not None:
                    found[a] = float(raw)
        return found


def _encode(result: Result) -> bytes:
    return json.dumps({"v": FORMAT, **result_to_json(result)}, sort_keys=True).encode()


def _decode(raw: bytes) -> Result | None:
    """A record, or None when it is of another format or damaged: such a record is never trusted."""
    try:
        rec = json.loads(raw)
        if rec.get("v") != FORMAT:
            return None
        return result_from_json(rec)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


class _MemoView:
    """The stat memo as one read transaction: one record per folder, so a run makes few lookups."""

    def __init__(self, index: Index) -> None:
        self._txn = index.env.begin(db=index._db("memo"))

    def get(self, folder: str) -> dict[str, Any] | None:
        return statmemo.unpack(self._txn.get(folder.encode(errors="surrogateescape")))

    def packed(self, folder: str) -> bytes | None:
        """The record as stored, for the C engine (which checks it as it reads it)."""
        raw = self._txn.get(folder.encode(errors="surrogateescape"))
        return raw if raw is not None and raw.startswith(statmemo.VERSION) else None

    def close(self) -> None:
        self._txn.abort()

    def __enter__(self) -> _MemoView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

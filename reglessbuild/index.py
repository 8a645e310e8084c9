"""The LMDB index: results by workspace hash, the file-stat memo, last inputs per artifact.

One environment in the cache dir; each write is one transaction; every record
carries a format version. A file LMDB cannot read is moved aside and replaced.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import lmdb

from .errors import IndexError_

FORMAT = 1
MAP_SIZE = 1 << 30  # virtual: the file grows with use
T = TypeVar("T")


@dataclass(frozen=True)
class Result:
    digest: str
    refs: tuple[str, ...]  # references known to carry the digest, IMAGE:HASH first
    builder: str
    built_at: float
    build_seconds: float = 0.0  # how long the build took: the saving of every later hit

    def with_ref(self, ref: str) -> Result:
        refs = self.refs if ref in self.refs else (*self.refs, ref)
        return Result(self.digest, refs, self.builder, self.built_at, self.build_seconds)


@dataclass(frozen=True)
class Moved:
    """A corrupt or foreign index that was set aside."""

    path: Path
    reason: str


DB_NAMES = ("results", "stat", "inputs", "meta")


@dataclass
class Index:
    path: Path
    env: lmdb.Environment
    moved: list[Moved] = field(default_factory=list)
    dbs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # handles are opened once, outside any transaction: open_db inside a write
        # transaction would start a second writer in the same thread and hang
        self.dbs = {name: self.env.open_db(name.encode()) for name in DB_NAMES}

    # -------------------------------------------------- opening

    @classmethod
    def open(cls, cache_dir: Path) -> Index:
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise IndexError_(f"cache dir {cache_dir} is not a folder", hint="pass --cache-dir DIR") from exc
        except OSError as exc:
            raise IndexError_(f"cannot create cache dir {cache_dir}: {exc.strerror}",
                              hint="pass --cache-dir DIR with a writable folder") from exc
        if not os.access(cache_dir, os.W_OK | os.X_OK):
            raise IndexError_(f"cache dir {cache_dir} is not writable", hint="pass --cache-dir DIR")
        path = cache_dir / "index"
        moved: list[Moved] = []
        try:
            index = cls(path, cls._open_env(path))
        except (lmdb.InvalidError, lmdb.CorruptedError, lmdb.VersionMismatchError, lmdb.IncompatibleError) as exc:
            aside = path.with_name(f"index.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
            path.rename(aside)
            moved.append(Moved(aside, str(exc).split(":")[0]))
            index = cls(path, cls._open_env(path))
        index.moved = moved
        index.env.reader_check()
        return index

    @staticmethod
    def _open_env(path: Path) -> lmdb.Environment:
        return lmdb.open(str(path), map_size=MAP_SIZE, max_dbs=8, subdir=True, readahead=False)

    def close(self) -> None:
        self.env.close()

    def _db(self, name: str) -> Any:
        return self.dbs[name]

    def _write(self, fn: Callable[[lmdb.Transaction], T]) -> T:
        while True:
            try:
                with self.env.begin(write=True) as txn:
                    return fn(txn)
            except lmdb.MapFullError:
                self.env.set_mapsize(self.env.info()["map_size"] * 2)
            except lmdb.MapResizedError:
                self.env.set_mapsize(0)

    def _read(self, db: str, key: bytes) -> bytes | None:
        try:
            with self.env.begin(db=self._db(db)) as txn:
                return txn.get(key)
        except lmdb.MapResizedError:
            self.env.set_mapsize(0)
            return self._read(db, key)

    # -------------------------------------------------- results

    def get(self, hash_: str) -> Result | None:
        raw = self._read("results", hash_.encode())
        if raw is None:
            return None
        rec = json.loads(raw)
        if rec.get("v") != FORMAT:
            return None  # a record of another format is never trusted
        return Result(rec["digest"], tuple(rec["refs"]), rec["builder"], rec["built_at"], rec.get("build_seconds", 0.0))

    def put(self, hash_: str, result: Result) -> None:
        data = json.dumps({"v": FORMAT, **asdict(result)}, sort_keys=True).encode()
        self._write(lambda txn: txn.put(hash_.encode(), data, db=self._db("results")))

    def drop(self, hash_: str) -> bool:
        return bool(self._write(lambda txn: txn.delete(hash_.encode(), db=self._db("results"))))

    def items(self) -> Iterator[tuple[str, Result]]:
        with self.env.begin(db=self._db("results")) as txn:
            rows = list(txn.cursor())
        for k, _ in rows:
            r = self.get(k.decode())
            if r is not None:
                yield k.decode(), r

    # -------------------------------------------------- stat memo

    def memo_get(self, key: bytes) -> bytes | None:
        return self._read("stat", key)

    def memo(self) -> "_MemoView":
        return _MemoView(self)

    def memo_put(self, records: dict[bytes, bytes]) -> None:
        if not records:
            return

        def put_all(txn: lmdb.Transaction) -> None:
            db = self._db("stat")
            for k, v in records.items():
                txn.put(k, v, db=db)

        self._write(put_all)

    # -------------------------------------------------- last inputs per artifact

    def last_inputs(self, artifact: str) -> dict[str, Any] | None:
        raw = self._read("inputs", artifact.encode())
        if raw is None:
            return None
        rec = json.loads(raw)
        return rec if rec.get("v") == FORMAT else None

    def put_inputs(self, artifact: str, record: dict[str, Any]) -> None:
        data = json.dumps({"v": FORMAT, **record}, sort_keys=True).encode()
        self._write(lambda txn: txn.put(artifact.encode(), data, db=self._db("inputs")))


class _MemoView:
    """The stat memo as one read transaction: hashing thousands of files opens one txn, not thousands."""

    def __init__(self, index: Index) -> None:
        self._txn = index.env.begin(db=index._db("stat"))

    def get(self, key: bytes) -> bytes | None:
        return self._txn.get(key)

    def close(self) -> None:
        self._txn.abort()

"""The LMDB index: versions, corruption, truncation, growth, processes at once, SIGKILL mid-write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reglessbuild import index as index_mod
from reglessbuild.errors import IndexError_
from reglessbuild.index import Index, Result

D = "sha256:" + "d" * 64


def _fill(cache: Path, n: int = 50) -> None:
    idx = Index.open(cache)
    for i in range(n):
        idx.put(f"{i:032x}", Result(D, (f"r.example/app:{i:032x}",), "buildah", time.time(), 1.0))
    idx.close()


def test_round_trip_and_merge(tmp_path):
    idx = Index.open(tmp_path)
    h = "a" * 32
    idx.put(h, Result(D, ("r.example/a:" + h,), "buildah", 1.0, 2.5))
    assert idx.get(h) == Result(D, ("r.example/a:" + h,), "buildah", 1.0, 2.5)
    written, conflicts = idx.merge_many({h: Result(D, ("r.example/b:" + h,), "x", 5.0)})
    assert (written, conflicts) == (1, 0) and idx.get(h).refs == ("r.example/a:" + h, "r.example/b:" + h)
    assert idx.merge_many({h: Result("sha256:" + "e" * 64, ("r.example/c:x",), "x", 5.0)}) == (0, 1)
    assert idx.get(h).digest == D
    assert idx.drop_many([h, "f" * 32]) == [h] and idx.get(h) is None


def test_last_inputs_are_written_once_per_hash(tmp_path):
    idx = Index.open(tmp_path)
    made = []

    def record(n):
        return lambda: (made.append(n), {"hash": n, "files": {}})[1]

    idx.put_inputs("r.example/a", "1" * 32, record("1" * 32))
    idx.put_inputs("r.example/a", "1" * 32, record("again"))  # nothing changed: not serialised again
    assert made == ["1" * 32] and idx.last_inputs("r.example/a")["hash"] == "1" * 32
    idx.put_inputs("r.example/a", "2" * 32, record("2" * 32))
    assert made == ["1" * 32, "2" * 32] and idx.last_inputs("r.example/a")["hash"] == "2" * 32
    assert idx.last_inputs("r.example/b") is None


def test_the_per_file_memo_of_earlier_versions_is_dropped_and_results_kept(tmp_path):
    import lmdb

    _fill(tmp_path, 3)
    env = lmdb.open(str(tmp_path / "index"), max_dbs=8, subdir=True)
    old = env.open_db(b"stat")
    with env.begin(write=True) as txn:
        txn.put(b"/ctx/a.txt", b"5:1:1:7=" + b"d" * 32, db=old)
    env.close()
    idx = Index.open(tmp_path)
    with idx.env.begin() as txn:
        assert txn.get(b"stat") is None  # the named database is gone
    assert idx.get(f"{1:032x}") is not None and idx.moved == []
    idx.close()


def test_garbage_data_file_is_moved_aside_and_replaced(tmp_path):
    _fill(tmp_path)
    data = tmp_path / "index" / "data.mdb"
    data.write_bytes(b"this is not lmdb" * 1000)
    idx = Index.open(tmp_path)
    assert len(idx.moved) == 1 and idx.moved[0].reason == "not an LMDB file"
    assert (idx.moved[0].path / "data.mdb").read_bytes().startswith(b"this is not lmdb")  # kept, not deleted
    assert list(idx.items()) == []
    idx.put("b" * 32, Result(D, ("r.example/x:y",), "buildah", 1.0))
    assert idx.get("b" * 32) is not None


def test_truncated_data_file_is_detected_before_mapping(tmp_path):
    _fill(tmp_path, 3000)
    data = tmp_path / "index" / "data.mdb"
    size = data.stat().st_size
    with open(data, "r+b") as f:
        f.truncate(size // 2)
    # in a child: if the check missed it, LMDB would kill the process with SIGBUS
    code = (f"from reglessbuild.index import Index; i = Index.open(__import__('pathlib').Path({str(tmp_path)!r})); "
            "print(i.moved[0].reason); print(len(list(i.items())))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    reason, count = p.stdout.splitlines()
    assert reason.startswith("truncated") and count == "0"


def test_unknown_format_is_set_aside(tmp_path):
    _fill(tmp_path, 2)
    idx = Index.open(tmp_path)
    idx.write(lambda txn: txn.put(b"format", b"99", db=idx._db("meta")))
    idx.close()
    idx = Index.open(tmp_path)
    assert "format '99'" in idx.moved[0].reason and list(idx.items()) == []


def test_records_of_another_version_are_not_trusted(tmp_path):
    idx = Index.open(tmp_path)
    idx.write(lambda txn: txn.put(b"c" * 32, json.dumps({"v": 7, "digest": D}).encode(), db=idx._db("results")))
    assert idx.get("c" * 32) is None and list(idx.items()) == []


def test_map_grows_when_full(tmp_path, monkeypatch):
    monkeypatch.setattr(index_mod, "MAP_SIZE", 256 * 1024)
    idx = Index.open(tmp_path)
    big = ("r.example/app:" + "x" * 32,) * 200
    for i in range(200):
        idx.put(f"{i:032x}", Result(D, big, "buildah", 1.0))
    assert len(list(idx.items())) == 200 and idx.env.info()["map_size"] > 256 * 1024


def test_cache_dir_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(IndexError_, match="not a folder"):
        Index.open(f)


WRITER = """
import sys, time
from pathlib import Path
from reglessbuild.index import Index, Result
idx = Index.open(Path(sys.argv[1]))
i = int(sys.argv[2])
print("ready", flush=True)
while True:
    refs = tuple(f"r.example/app{j}:{i:032x}" for j in range(300))   # ~15 kB a record
    idx.put(f"{i:032x}", Result("sha256:" + "d" * 64, refs, "buildah", time.time(), float(i)))
    i += 1
"""


def test_sigkill_while_recording_leaves_no_partial_entry(tmp_path):
    for round_ in range(3):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(round_ * 100000)],
                             stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        time.sleep(0.3 + 0.1 * round_)
        p.send_signal(signal.SIGKILL)
        p.wait()
    idx = Index.open(tmp_path)
    assert idx.moved == []
    rows = list(idx.items())
    assert len(rows) > 3
    for h, r in rows:  # every entry whole: all 300 references, consistent with its key
        assert len(r.refs) == 300 and all(ref.endswith(h) for ref in r.refs)
    with idx.env.begin(db=idx._db("results")) as txn:
        assert txn.stat(idx._db("results"))["entries"] == len(rows)


def test_several_processes_write_at_once(tmp_path):
    code = ("import sys; from pathlib import Path; from reglessbuild.index import Index, Result\n"
            "idx = Index.open(Path(sys.argv[1])); w = int(sys.argv[2])\n"
            "for i in range(200): idx.put(f'{w:08x}{i:024x}', Result('sha256:' + 'd' * 64, ('r.example/a:b',), "
            "'buildah', 1.0))\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(w)]) for w in range(4)]
    assert [p.wait() for p in procs] == [0, 0, 0, 0]
    assert len(list(Index.open(tmp_path).items())) == 800


def test_unwritable_cache_dir_as_unprivileged_user():
    if os.geteuid() != 0:
        pytest.skip(reason="needs root: setpriv can only switch to user nobody from root")
    import tempfile

    with tempfile.TemporaryDirectory() as top:
        Path(top).chmod(0o755)
        ro = Path(top) / "ro"
        ro.mkdir(mode=0o555)
        code = f"from reglessbuild.index import Index; from pathlib import Path; Index.open(Path({str(ro)!r}))"
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
                            code], capture_output=True, text=True)
    assert p.returncode != 0 and f"cache dir {ro} is not writable (Permission denied)" in p.stderr


def test_a_result_already_there_is_not_written_again(tmp_path):
    """A restart records every cached artifact's result again; one that is there already costs a read,
    not a write transaction (a disk flush each)."""
    index = Index.open(tmp_path / "idx")
    result = Result("sha256:" + "a" * 64, ("r/x:1",), "buildah", 1.0, 2.0)
    index.put("h1", result)
    before = index.env.info()["last_txnid"]
    index.put("h1", result)
    assert index.env.info()["last_txnid"] == before and index.get("h1") == result
    index.put("h1", result.with_ref("r/y:1"))
    assert index.env.info()["last_txnid"] == before + 1 and index.get("h1") == result.with_ref("r/y:1")


def test_a_commit_by_another_run_while_the_data_file_is_inspected_is_no_damage(tmp_path, monkeypatch):
    # another run commits between the inspection's reads of the size and of the header (its new pages,
    # then the meta page naming them): the index is whole, and must not be set aside with every run's
    # entries (test_several_processes_write_at_once lost 600 of 800 entries so, under load)
    idx = Index.open(tmp_path)
    idx.put("0" * 32, Result("sha256:" + "d" * 64, ("r.example/a:b",), "buildah", 1.0))
    idx.close()
    data = tmp_path / "index" / "data.mdb"
    small = data.read_bytes()
    idx = Index.open(tmp_path)
    for i in range(2000):  # enough pages that the file grows
        idx.put(f"{i:032x}", Result("sha256:" + "e" * 64, tuple(f"r.example/a:{j}" for j in range(20)), "buildah", 1.0))
    idx.close()
    grown = data.read_bytes()
    assert len(grown) > len(small)
    data.write_bytes(small)
    real_open = open

    def committing_open(path, *args, **kwargs):  # the other run's commit lands as the header is read
        if Path(path) == data:
            data.write_bytes(grown)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(index_mod, "open", committing_open, raising=False)
    assert index_mod.inspect_data_file(data) is None

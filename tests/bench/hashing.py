"""Hashing throughput: a generated context of 100,000 files and 1 GB, hashed cold (empty stat memo)
and warm (every file memoized), with the real LMDB index. Run by `bin/bench --hashing`.

Medians: cold of 3 runs (each with an empty index, the files in the page cache), warm of 7. The
Python engine (reglessbuild/hashing/python_engine.py) runs in the same process as the baseline.
docs/performance.md ("Hashing") keeps the figures."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from reglessbuild import dockerfile
from reglessbuild.hashing import choose, ignore, inputs, statmemo
from reglessbuild.index import Index


def make_context(root: Path, files: int, total_bytes: int) -> int:
    per = total_bytes // files
    block = os.urandom(4096)
    written = 0
    for i in range(files):
        folder = root / f"d{i // 1000:03d}"
        if i % 1000 == 0:
            folder.mkdir(parents=True, exist_ok=True)
        data = (i.to_bytes(8, "little") + block) * (per // 4104) + block[: per % 4104]
        (folder / f"f{i:06d}.bin").write_bytes(data)
        written += len(data)
    (root / "Dockerfile").write_text("FROM scratch\nCOPY . /ctx/\n")
    return written


def hash_once(root: Path, index: Index) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    df = root / "Dockerfile"
    an = dockerfile.analyze(df, build_args={}, target=None)
    with index.memo() as memo:
        files, records, read = inputs.collect(root, df, an, ignore.load(root, df), memo)
    index.memo_put(records)
    return time.perf_counter() - t0, len(files), read


def engine_runs(root: Path, cache: Path, colds: int, warms: int) -> tuple[list[float], list[float], int, int, int]:
    """Cold runs (each with an empty index), then warm runs on the last one's memo."""
    cold, warm = [], []
    for i in range(colds):
        index = Index.open(cache / f"cold{i}")
        t, n, read = hash_once(root, index)
        cold.append(t)
        if i < colds - 1:
            index.close()
    for _ in range(warms):
        t, n2, read2 = hash_once(root, index)
        warm.append(t)
    index.close()
    assert n == n2
    return cold, warm, n, read, read2


def run(files: int = 100_000, total_bytes: int = 1 << 30) -> dict:
    with tempfile.TemporaryDirectory(prefix="regless-hashbench-") as tmp:
        root = Path(tmp) / "ctx"
        t0 = time.perf_counter()
        size = make_context(root, files, total_bytes)
        gen = time.perf_counter() - t0
        time.sleep(statmemo.RACY_SECONDS + 0.5)  # past git's racily-clean window, so the files can be memoized
        # baseline in the same process: list and read every file in one loop, one read sized by stat per
        # file, no hashing and no memo (what a plain single-process Python reader does at best)
        t0 = time.perf_counter()
        for dirpath, _d, names in os.walk(root):
            for n in names:
                p = os.path.join(dirpath, n)
                fd = os.open(p, os.O_RDONLY)
                try:
                    os.read(fd, os.fstat(fd).st_size + 1)
                finally:
                    os.close(fd)
        read_only = time.perf_counter() - t0
        engine = choose.engine().name
        colds, warms, n, read, read2 = engine_runs(root, Path(tmp) / "cache", 3, 7)
        # the Python engine (what runs where reglessbuild/_native is not built), same process, same files
        with choose.using(choose.python()):
            py_colds, py_warms, *_ = engine_runs(root, Path(tmp) / "cache-python", 1, 3)
        stat_ref, read_ref = c_references(root)
    cold, warm = statistics.median(colds), statistics.median(warms)
    py_cold, py_warm = statistics.median(py_colds), statistics.median(py_warms)
    return {"files": n, "bytes": size, "engine": engine, "generateSeconds": gen, "readOnlySeconds": read_only,
            "coldRuns": colds, "warmRuns": warms, "coldSeconds": cold, "coldGBps": read / cold / 1e9,
            "coldBytesRead": read, "warmSeconds": warm, "warmBytesRead": read2, "coldVsReadOnly": cold / read_only,
            "pythonColdSeconds": py_cold, "pythonWarmSeconds": py_warm,
            "coldVsPython": cold / py_cold, "warmVsPython": warm / py_warm,
            "cStatSeconds": stat_ref, "cReadSeconds": read_ref,
            "warmVsCStat": warm / stat_ref, "coldVsCRead": cold / read_ref}


def c_references(root: Path) -> tuple[float, float]:
    """Two references in C, measured in the same run: GNU find listing and stat-ing every file (one
    process: the work a warm run cannot avoid), and cat reading every byte on every core (cat is
    not the floor for reading: it does more system calls per file than regless's loop)."""
    t0 = time.perf_counter()
    subprocess.run(["find", str(root), "-printf", "%s %T@ %C@ %i\n"], check=True, stdout=subprocess.DEVNULL)
    stat_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    listing = subprocess.run(["find", str(root), "-type", "f", "-print0"], check=True, capture_output=True).stdout
    subprocess.run(["xargs", "-0", "-P", str(len(os.sched_getaffinity(0))), "-n", "5000", "cat"], input=listing,
                   check=True, stdout=subprocess.DEVNULL)
    return stat_ref, time.perf_counter() - t0


if __name__ == "__main__":
    import json
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print(json.dumps(run(n, (1 << 30) * n // 100_000), indent=2))

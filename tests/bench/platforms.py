"""bin/bench --platforms: what a restart of multi-platform artifacts costs against single-platform ones.

The same generated project (FROM a busybox base index, a RUN step) is built twice against one local
registry: once for the runner's platform only, once for linux/amd64 + linux/arm64 (`--platform`, one
image index per artifact; arm64's RUN steps under qemu-user-static). Then each is restarted (nothing
changed) several times: the wall time (median) and the registry calls of a restart are compared. Issue 19
asks that a multi-platform restart cost one check per artifact, as a single-platform one does.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import harness
from bench.generate import Shape, generate
from bench.restart import settle
from reglessbuild import platforms


def run(shape: Shape, regless: Callable[..., dict], storage_env: Callable[[Path], dict[str, str]],
        env: dict[str, str], rounds: int = 5) -> dict:
    arm64 = harness.FOREIGN / "arm64" / "busybox"
    if platforms.host() != platforms.parse("linux/amd64") or not arm64.exists():
        sys.exit(f"bench --platforms: needs an amd64 runner and {arm64} (bin/_setup.sh fetches it as root)")
    if why := platforms.emulation(platforms.parse("linux/arm64")):
        sys.exit(f"bench --platforms: cannot run arm64 RUN steps here: {why}")
    out: dict = {"shape": shape.__dict__, "rounds": rounds}
    with tempfile.TemporaryDirectory(prefix="regless-bench-platforms-") as tmp_s:
        tmp = Path(tmp_s)
        (tmp / "registry").mkdir()
        with harness.LocalRegistry(tmp / "registry") as reg:
            base = harness.make_index_image(reg.address, "base/busybox-multi:1", {
                "linux/amd64": harness.busybox_root(tmp / "base-amd64" / "root"),
                "linux/arm64": harness.busybox_root(tmp / "base-arm64" / "root", str(arm64)),
            }).split("@")[0]
            project = tmp / "project"
            generate(project, shape)
            env.update(storage_env(tmp / "storage"))
            kinds = {"single": (), "multi": ("--platform", "linux/amd64,linux/arm64")}
            where = {k: (f"{reg.address}/{k}", tmp / f"cache-{k}") for k in kinds}
            colds = {}
            for k, extra in kinds.items():
                t0 = time.perf_counter()
                colds[k] = regless(project, *where[k], base, *extra)
                print(f"{k}: cold build {time.perf_counter() - t0:.1f}s, {colds[k]['builds']} artifacts built",
                      flush=True)
            restarts: dict[str, list[dict]] = {k: [] for k in kinds}
            for _ in range(rounds):  # alternately, so that neither gets the warmer machine
                for k, extra in kinds.items():
                    restarts[k].append(regless(project, *where[k], base, *extra))
            for k, rs in restarts.items():
                assert all(r["builds"] == 0 for r in rs), "a restart built something"
                out[k] = {"cold": colds[k], "restartWalls": [r["wall"] for r in rs],
                          "restartWall": statistics.median(r["wall"] for r in rs),
                          "restartCalls": rs[-1]["registryCalls"],
                          "checkSeconds": statistics.median(r["phases"]["check"] for r in rs),
                          "hashSeconds": statistics.median(r["phases"]["hash"] for r in rs)}
            settle(env)  # a removal left running (regless's own storage), before the folder goes
    s, m = out["single"], out["multi"]
    out["multiVsSingle"] = m["restartWall"] / s["restartWall"]
    print(f"\n{shape.artifacts} artifacts x {shape.files} files, FROM a busybox index with a RUN step; "
          f"median of {rounds} restarts")
    for name in ("single", "multi"):
        r = out[name]
        print(f"  {name:<6} restart {r['restartWall']:.2f}s (hash {r['hashSeconds']:.2f}s, check "
              f"{r['checkSeconds']:.2f}s), {r['restartCalls']} registry calls "
              f"({r['restartCalls'] / shape.artifacts:.2f} per artifact)")
    print(f"  multi/single restart: {out['multiVsSingle']:.2f}")
    return out

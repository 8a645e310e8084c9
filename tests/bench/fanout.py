"""bin/bench --shares N: one runner against N runners (regless build --share K/N) on the same generated
project, each run into an empty repository with image storage and cache of its own.

On a machine with fewer cores than runners the N runners contend for the same cores: the wall time then
says little about N machines, so the work of each runner (its wall time, and the CPU time of regless and
every tool it started) is reported too.
"""

from __future__ import annotations

import json
import resource
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from bench.restart import settle


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(project: Path, registry: str, base: str, tmp: Path, shares: int, regless_bin: str,
        storage_env: Callable[[Path], dict[str, str]]) -> dict:
    def env(name: str) -> dict[str, str]:
        home = tmp / name / "home"
        home.mkdir(parents=True, exist_ok=True)
        return {**storage_env(tmp / name / "storage"), "HOME": str(home), "REGLESS_CACHE_DIR": str(tmp / name / "cache"),
                "REGLESS_BASE_IMAGE": base, "NO_COLOR": "1"}

    def start(name: str, repo: str, *extra: str) -> tuple[subprocess.Popen, float]:
        argv = [regless_bin, "build", "-q", "--output", "json", "--default-repo", f"{registry}/{repo}", *extra]
        return subprocess.Popen(argv, cwd=project, env=env(name), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True), time.perf_counter()

    def finish(p: subprocess.Popen, t0: float) -> dict:
        out, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"bench --shares: {' '.join(p.args)} failed:\n{err[-3000:]}")
        doc = json.loads(out)
        return {"wall": time.perf_counter() - t0, "builds": doc["buildsStarted"]}

    cpu0 = _cpu()
    one = finish(*start("one", "one"))
    one["cpu"] = _cpu() - cpu0
    settle(env("one"))  # its removal, left running on its own storage, ends before the runners start

    cpu0, t0 = _cpu(), time.perf_counter()
    plan = tmp / "plan.json"
    subprocess.run([regless_bin, "plan", "--default-repo", f"{registry}/fan", "--jobs", str(shares), "--save",
                    str(plan)], cwd=project, env=env("plan"), check=True, stdout=subprocess.DEVNULL)
    plan_wall = time.perf_counter() - t0
    total = len(json.loads(plan.read_text())["fanout"]["shares"])
    started = [start(f"share{k}", "fan", "--share", f"{k}/{total}", "--plan", str(plan)) for k in range(1, total + 1)]
    runners = [finish(p, t) for p, t in started]
    fan_wall = time.perf_counter() - t0
    fan_cpu = _cpu() - cpu0
    for name in (f"share{k}" for k in range(1, total + 1)):
        settle(env(name))  # a removal left running (regless's own storage), before the folder goes
    return {"shares": total, "one": one, "plan": plan_wall, "runners": runners, "fanWall": fan_wall,
            "sumOfRunnerWalls": sum(r["wall"] for r in runners), "fanCpu": fan_cpu,
            "builds": sum(r["builds"] for r in runners)}


def lines(r: dict) -> list[str]:
    out = [f"one runner: {r['one']['wall']:.1f} s wall, {r['one']['cpu']:.1f} s CPU, {r['one']['builds']} builds",
           f"{r['shares']} runners at once (plan {r['plan']:.1f} s, then --share K/{r['shares']}): "
           f"{r['fanWall']:.1f} s wall ({r['fanWall'] / r['one']['wall']:.2f} x one runner), "
           f"{r['fanCpu']:.1f} s CPU, {r['builds']} builds"]
    for k, x in enumerate(r["runners"], 1):
        out.append(f"  share {k}/{r['shares']}: {x['wall']:.1f} s wall, {x['builds']} builds")
    out.append(f"  sum of the runners' walls: {r['sumOfRunnerWalls']:.1f} s (the work N machines would share)")
    return out

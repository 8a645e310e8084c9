"""bin/bench --restart: a no-change restart against its floor, and where its time goes.

One generated project is built once (cold), then these run alternately, round after round, so that
each meets the same machine: the floor (stat every input file + one concurrent manifest HEAD per
artifact), a bare `python -c pass` from regless's own venv, `regless version`, `regless --help`, and a
restart (`regless build`, every artifact cached) with skopeo and, where it is on PATH, with crane; with
`--baseline REGLESS`, the same commands of another regless install too (e.g. one made from an older
commit), for before/after figures from one run. Medians are reported, and ratios to the floor and to the
bare interpreter of the same run. A restart's JSON gives its phases (startup, config, hash, check,
decide, act, record); the rest of its wall time is the interpreter's own start and the output.
`-X importtime` of each command gives what it imports, against the bare interpreter's imports.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import harness
from bench.generate import Shape, generate

PHASES = ("startup", "config", "hash", "check", "decide", "act", "record")


def _wall(argv: list[str], **kw: object) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"bench --restart: {' '.join(argv[:3])} failed:\n{p.stderr[-3000:]}")
    return wall, p


def import_ms(argv: list[str], **kw: object) -> tuple[float, int]:
    """Milliseconds the command's top-level imports took (-X importtime, cumulative) and how many
    modules it imported, the interpreter's own start-up imports (site) left out."""
    env = {**kw.pop("env", os.environ), "PYTHONPROFILEIMPORTTIME": "1"}  # type: ignore[arg-type]
    _, p = _wall(argv, env=env, **kw)
    total, n, after_site = 0, 0, False
    for ln in p.stderr.splitlines():
        parts = ln.split("|")
        if not ln.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue  # the log's header line, or the command's own output
        name = parts[2][1:]
        if after_site:
            n += 1
            total += int(parts[1]) if not name.startswith(" ") else 0  # top level: cumulative of its tree
        after_site = after_site or name == "site"
    return total / 1000, n


def site_ms(python: str) -> float:
    """Milliseconds of the bare interpreter's own imports (site and what it loads)."""
    p = subprocess.run([python, "-X", "importtime", "-c", "pass"], capture_output=True, text=True, check=True)
    return sum(int(ln.split("|")[1]) for ln in p.stderr.splitlines()
               if ln.startswith("import time:") and ln.rstrip().endswith("| site")) / 1000


def run(shape: Shape, regless_exe: str, floor: Callable[..., dict], storage_env: Callable[[Path], dict[str, str]],
        rounds: int = 7, baseline: str | None = None) -> dict:
    python = str(Path(regless_exe).with_name("python"))
    crane = shutil.which("crane")
    no_crane_path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                                    if not (Path(p) / "crane").exists())
    installs = {"": regless_exe} | ({"baseline ": baseline} if baseline else {})
    out: dict = {"shape": shape.__dict__ | {"totalFiles": shape.total_files}, "rounds": rounds,
                 "tools": ["skopeo"] + (["crane"] if crane else [])}
    with tempfile.TemporaryDirectory(prefix="regless-bench-restart-") as tmp_s:
        tmp = Path(tmp_s)
        (tmp / "registry").mkdir()
        with harness.LocalRegistry(tmp / "registry") as reg:
            base = harness.make_base_image(reg.address)
            project = tmp / "project"
            generate(project, shape)
            env = {**storage_env(tmp / "storage"), "REGLESS_BASE_IMAGE": base, "NO_COLOR": "1",
                   "REGLESS_CACHE_DIR": str(tmp / "cache")}
            tool_env = {"skopeo": {**env, "PATH": no_crane_path}} | ({"crane": env} if crane else {})
            build = ["build", "-q", "--output", "json", "--default-repo", f"{reg.address}/bench"]
            t0 = time.perf_counter()
            _, p = _wall([regless_exe, *build], cwd=project, env=tool_env["skopeo"])
            print(f"cold build of {shape.artifacts} artifacts: {time.perf_counter() - t0:.1f}s", flush=True)
            cmds: dict[str, tuple[list[str], dict[str, str]]] = {"python -c pass": ([python, "-c", "pass"], env)}
            for label, exe in installs.items():
                cmds[f"{label}version"] = ([exe, "version"], env)
                cmds[f"{label}--help"] = ([exe, "--help"], env)
                for tool, tenv in tool_env.items():
                    cmds[f"{label}restart {tool}"] = ([exe, *build], tenv)
            walls: dict[str, list[float]] = {k: [] for k in ["floor", *cmds]}
            phases: dict[str, list[dict]] = {k: [] for k in cmds if "restart" in k}
            for _ in range(rounds):
                walls["floor"].append(floor(project, shape, reg.address, "bench")["wall"])
                for name, (argv, cenv) in cmds.items():
                    wall, p = _wall(argv, cwd=project, env=cenv)
                    walls[name].append(wall)
                    if name in phases:
                        res = json.loads(p.stdout)
                        assert res["buildsStarted"] == 0 and {a["outcome"] for a in res["artifacts"]} == {"cached"}
                        phases[name].append(res["phases"])
            med = {k: statistics.median(v) for k, v in walls.items()}
            out["walls"], out["medians"] = walls, med
            out["phases"] = {k: {ph: statistics.median(x.get(ph, 0.0) for x in v) for ph in PHASES}
                             for k, v in phases.items()}
            out["imports"] = {"python -c pass (site)": site_ms(python)}
            for name, (argv, cenv) in cmds.items():
                if name != "python -c pass":
                    out["imports"][name] = import_ms(argv, cwd=project, env=cenv)
    report(out)
    return out


def report(out: dict) -> None:
    med, bare, floor_ = out["medians"], out["medians"]["python -c pass"], out["medians"]["floor"]
    s = out["shape"]
    print(f"\n{s['artifacts']} artifacts x {s['files']} files ({s['totalFiles']} input files); medians of "
          f"{out['rounds']} alternating rounds")
    print(f"{'command':<28} {'wall s':>7} {'- bare python':>14} {'x bare':>7} {'x floor':>8} {'imports':>16}")
    for name, wall in med.items():
        imp = out["imports"].get(name)
        imp_s = "" if imp is None else (f"{imp:.1f} ms" if isinstance(imp, float) else f"{imp[0]:.1f} ms/{imp[1]}")
        print(f"{name:<28} {wall:7.3f} {1000 * (wall - bare):11.1f} ms {wall / bare:7.2f} {wall / floor_:8.2f} "
              f"{imp_s:>16}")
    print(f"\n{'restart phases (s)':<28} " + " ".join(f"{p:>7}" for p in (*PHASES, "other")))
    for name, ph in out["phases"].items():
        other = med[name] - sum(v for k, v in ph.items() if k not in ("record",)) - 0.0
        print(f"{name:<28} " + " ".join(f"{ph[p]:7.3f}" for p in PHASES) + f" {other:7.3f}")
    print("(record is part of act; other = wall - the phases: the interpreter's start, output, exit)")

"""bin/bench --restart: a no-change restart against its floor, and where its time goes.

One generated project is built once (cold), then these run alternately, round after round, so that
each meets the same machine: the floor (stat every input file + one concurrent manifest HEAD per
artifact; again with each HEAD of the image a restart checks, which the registry answers from the manifest,
where the first floor's HEADs of a tag it lacks are 404s), a bare `python -c pass` from regless's own venv, `regless version`, `regless --help`, and a
restart (`regless build`, every artifact cached) with skopeo and, where it is on PATH, with crane; with
`--baseline LABEL=REGLESS` (repeatable), the same commands of other regless installs too (e.g. made from
older commits), for before/after figures from one run. Medians are reported, and ratios to the floor and to the
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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


def import_ms(argv: list[str], runs: int = 5, **kw: object) -> tuple[float, int]:
    """Milliseconds the command's top-level imports took (-X importtime, cumulative; the least of `runs`
    runs, as the machine's other work only adds) and how many modules it imported, the interpreter's own
    start-up imports (site) left out."""
    return min(_import_ms(argv, **kw) for _ in range(runs))


def _import_ms(argv: list[str], **kw: object) -> tuple[float, int]:
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


def site_ms(python: str, runs: int = 5) -> float:
    """Milliseconds of the bare interpreter's own imports (site and what it loads; the least of `runs`)."""
    def once() -> float:
        p = subprocess.run([python, "-X", "importtime", "-c", "pass"], capture_output=True, text=True, check=True)
        return sum(int(ln.split("|")[1]) for ln in p.stderr.splitlines()
                   if ln.startswith("import time:") and ln.rstrip().endswith("| site")) / 1000
    return min(once() for _ in range(runs))


def settle(env: dict[str, str]) -> float:
    """Wait until the removal a run left running on regless's own storage (storage.Claim.release) has ended,
    where `env` gives regless its own storage; the seconds waited. Before each timed build, so that every
    install meets a settled storage (an older install's run would otherwise wait, in its claim, for the
    removal of the run before it); what it waited says how long a removal outlived its run."""
    home = env.get("XDG_DATA_HOME")
    if not home or env.get("CONTAINERS_STORAGE_CONF"):
        return 0.0
    return harness.settled(harness.own_storage_lock(Path(home)))


def run(shape: Shape, regless_exe: str, floor: Callable[..., dict], storage_env: Callable[[Path], dict[str, str]],
        rounds: int = 7, baselines: dict[str, str] | None = None, one_file_only: bool = False) -> dict:
    python = str(Path(regless_exe).with_name("python"))
    crane = shutil.which("crane")
    no_crane_path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                                    if not (Path(p) / "crane").exists())
    installs = {"": regless_exe} | {f"{label} ": exe for label, exe in (baselines or {}).items()}
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
            tags = {a["name"]: a["hash"] for a in json.loads(p.stdout)["artifacts"]}
            settle(env)  # the cold build's removal of its images, before anything is timed
            if one_file_only:  # --one-file: that scenario alone, every install in turn, `rounds` rounds
                out["oneFile"] = one_file(installs, project, build, tool_env, rounds)
                settle(env)  # the last run's removal, before the folder goes
                report_one_file(out)
                return out
            cmds: dict[str, tuple[list[str], dict[str, str]]] = {"python -c pass": ([python, "-c", "pass"], env)}
            for label, exe in installs.items():
                cmds[f"{label}version"] = ([exe, "version"], env)
                cmds[f"{label}--help"] = ([exe, "--help"], env)
                for tool, tenv in tool_env.items():
                    cmds[f"{label}restart {tool}"] = ([exe, *build], tenv)
                    # the same run not replayed (replay.py): what a restart costs when it must look again
                    cmds[f"{label}restart {tool} in full"] = ([exe, *build], {**tenv, "REGLESS_REPLAY": "0"})
                    cmds[f"{label}text restart {tool}"] = ([exe, *[a for a in build if a not in ("--output", "json")]],
                                                          tenv)
            walls: dict[str, list[float]] = {k: [] for k in ["floor", "floor, images there", *cmds]}
            phases: dict[str, list[dict]] = {k: [] for k in cmds if "restart" in k and "text restart" not in k}
            replayed: dict[str, int] = dict.fromkeys(phases, 0)
            for _ in range(rounds):
                walls["floor"].append(floor(project, shape, reg.address, "bench")["wall"])
                walls["floor, images there"].append(floor(project, shape, reg.address, "bench", tags)["wall"])
                for name, (argv, cenv) in cmds.items():
                    wall, p = _wall(argv, cwd=project, env=cenv)
                    walls[name].append(wall)
                    if name in phases:
                        res = json.loads(p.stdout)
                        assert res["buildsStarted"] == 0 and {a["outcome"] for a in res["artifacts"]} == {"cached"}
                        phases[name].append(res["phases"])
                        replayed[name] += bool(res.get("replayed"))
            med = {k: statistics.median(v) for k, v in walls.items()}
            out["walls"], out["medians"], out["replayed"] = walls, med, replayed
            out["phases"] = {k: {ph: statistics.median(x.get(ph, 0.0) for x in v) for ph in PHASES}
                             for k, v in phases.items()}
            out["imports"] = {"python -c pass (site)": site_ms(python)}
            for name, (argv, cenv) in cmds.items():
                if name != "python -c pass":
                    out["imports"][name] = import_ms(argv, cwd=project, env=cenv)
            out["concurrency"] = concurrency_sweep(regless_exe, project, build, tool_env, min(rounds, 5))
            out["rename"] = rename(regless_exe, project, reg.address, build, tool_env, min(rounds, 3))
            out["oneFile"] = one_file(installs, project, build, tool_env, min(rounds, 3))
            settle(env)
    report(out)
    return out


def rename(exe: str, project: Path, registry: str, build: list[str], tool_env: dict[str, dict[str, str]],
           rounds: int) -> dict:
    """Every image renamed (a new --default-repo each time): each artifact retagged, none built, with its
    inputs record linked (the default) and with --no-records (the image's retag alone); against plain
    copies of the same images by the same tool (`copies`), alternately."""
    first = json.loads(_wall([exe, *build], cwd=project, env=next(iter(tool_env.values())))[1].stdout)
    tags = {a["name"]: a["hash"] for a in first["artifacts"]}
    variants = {"": [], " --no-records": ["--no-records"]}
    runs: dict[str, list[dict]] = {t + v: [] for t in tool_env for v in variants}
    copies: dict[str, list[float]] = {t: [] for t in tool_env}
    for r in range(rounds):
        for tool, env in tool_env.items():
            for v, extra in variants.items():
                repo = f"{registry}/renamed-{tool}{v.replace(' --', '-')}-{r}"
                wall, p = _wall([exe, *build[:-1], repo, *extra], cwd=project, env=env)
                res = json.loads(p.stdout)
                assert res["buildsStarted"] == 0 and {a["outcome"] for a in res["artifacts"]} == {"retagged"}
                runs[tool + v].append({"wall": wall, "calls": res["registryCalls"], **res["phases"]})
            copies[tool].append(copies_wall(tool, registry, tags, f"copies-{tool}-{r}", env))
    out: dict = {}
    for name, rs in runs.items():
        med = {k: statistics.median(x[k] for x in rs) for k in rs[0]}
        bare = statistics.median(copies[name.split()[0]])
        out[name] = {"runs": rs, "median": med, "copiesWall": bare, "actVsCopies": med["act"] / bare,
                     "callsPerArtifact": med["calls"] / len(tags)}
    for tool, env in tool_env.items():
        for v, extra in variants.items():
            out[tool + v]["processes"] = tool_processes(exe, project, [*build[:-1], f"{registry}/counted-{tool}"
                                                        f"{v.replace(' --', '-')}", *extra], env, tool, len(tags))
    return out


def tool_processes(exe: str, project: Path, argv: list[str], env: dict[str, str], tool: str, n: int) -> dict[str, float]:
    """The tool's processes an artifact in one more (untimed) run of `argv`, by subcommand: a shim first on
    PATH logs each start of `tool`, then runs the real one."""
    real = shutil.which(tool, path=env.get("PATH"))
    assert real, tool
    with tempfile.TemporaryDirectory(prefix="regless-bench-shim-") as shim_s:
        shim, log = Path(shim_s) / tool, Path(shim_s) / "calls"
        shim.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{real}" "$@"\n')
        shim.chmod(0o755)
        _wall([exe, *argv], cwd=project, env={**env, "PATH": f"{shim_s}{os.pathsep}{env.get('PATH', '')}"})
        calls = log.read_text().splitlines() if log.exists() else []
    kinds: dict[str, int] = {}
    for c in calls:
        words = [w for w in c.split() if not w.startswith("-")]
        kinds[words[0] if words else "?"] = kinds.get(words[0] if words else "?", 0) + 1
    return {"all": len(calls) / n, **{k: v / n for k, v in kinds.items()}}


def copies_wall(tool: str, registry: str, tags: dict[str, str], dst_repo: str, env: dict[str, str]) -> float:
    """Wall seconds of one plain copy per artifact (what a retag is), 16 at a time as regless runs its
    retags, with the flags regless gives the tool."""
    def one(name_tag: tuple[str, str]) -> None:
        name, tag = name_tag
        src, dst = f"{registry}/bench/{name}:{tag}", f"{registry}/{dst_repo}/{name}:{tag}"
        argv = (["crane", "copy", "--insecure", src, dst] if tool == "crane" else
                ["skopeo", "copy", "--quiet", "--all", "--preserve-digests", "--src-tls-verify=false",
                 "--dest-tls-verify=false", f"docker://{src}", f"docker://{dst}"])
        subprocess.run(argv, check=True, capture_output=True, env=env)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, tags.items()))
    return time.perf_counter() - t0


def concurrency_sweep(exe: str, project: Path, build: list[str], tool_env: dict[str, dict[str, str]],
                      rounds: int, sizes: tuple[int, ...] = (2, 4, 8, 16)) -> dict:
    """The restart at several registry.concurrency values (checks at once), alternately: on a machine of
    few cores the tools' start is CPU-bound, and more processes at once than cores only queue."""
    cfg = project / "regless.yaml"
    original = cfg.read_text()
    walls: dict[str, dict[int, list[tuple[float, float]]]] = {t: {n: [] for n in sizes} for t in tool_env}
    try:
        for _ in range(rounds):
            for n in sizes:
                cfg.write_text(original.replace("concurrency: 16}", f"concurrency: {n}}}", 1))
                for tool, env in tool_env.items():
                    wall, p = _wall([exe, *build], cwd=project, env=env)
                    ph = json.loads(p.stdout)["phases"]
                    walls[tool][n].append((wall, ph["hash"] + ph["check"]))
    finally:
        cfg.write_text(original)
    return {tool: {str(n): {"wall": statistics.median(w for w, _ in v), "hashAndCheck": statistics.median(c for _, c in v)}
                   for n, v in per.items()} for tool, per in walls.items()}


def one_file(installs: dict[str, str], project: Path, build: list[str], tool_env: dict[str, dict[str, str]],
             rounds: int) -> dict:
    """One input file of one artifact changed (the first artifact's; with records, the last's too), then a
    build: regless's own share of the wall time against the builder's (buildah build + push, the `build`
    phase), per tool, with and without inputs records; each install (label -> regless executable; "" is
    this one) in turn, round after round. `reglessVsFirst` is the median over rounds of regless's part
    against the first install's in the same round."""
    folders = sorted(d for d in project.iterdir() if (d / "src").is_dir())
    # the file changed in the artifact hashed first, and (", last") in the one hashed last: a build starts
    # as soon as its artifact is decided, so where the change is decides how much hashing it overlaps
    victims = {"": next((folders[0] / "src").rglob("*.dat")), ", last": next((folders[-1] / "src").rglob("*.dat"))}
    originals = {k: v.read_bytes() for k, v in victims.items()}
    out: dict = {}
    prior: list[tuple[str | None, float]] = []  # (the install of the run before, the wait for its removal)
    prev: str | None = None
    try:
        for r in range(rounds):
            for label, exe in installs.items():
                for tool, env in tool_env.items():
                    for v, extra in {"": [], " --no-records": ["--no-records"]}.items():
                        for where, victim in victims.items():
                            if where and v:
                                continue  # the last artifact's case with records only
                            victim.write_bytes(originals[where] + f"changed {label}{tool}{v} {r}".encode())
                            waited = settle(env)  # the run before's removal, where left running
                            wall, p = _wall([exe, *build, *extra], cwd=project, env=env)
                            res = json.loads(p.stdout)
                            assert res["buildsStarted"] == 1, res["buildsStarted"]
                            out.setdefault((label, tool + v + where), []).append({"wall": wall, **res["phases"]})
                            prior.append((prev, waited))
                            prev = label
    finally:
        for where, victim in victims.items():
            victim.write_bytes(originals[where])
    summary: dict = {}
    first = next(iter(installs))
    for (label, case), runs in out.items():
        wall = statistics.median(x["wall"] for x in runs)
        builder = statistics.median(x["build"] for x in runs)
        mine = out[first, case]
        summary[label + case] = {"runs": runs, "wall": wall, "build": builder, "regless": wall - builder,
                         "reglessShare": statistics.median((x["wall"] - x["build"]) / x["wall"] for x in runs),
                         "reglessVsFirst": statistics.median((x["wall"] - x["build"]) / (y["wall"] - y["build"])
                                                             for x, y in zip(runs, mine, strict=True))}
    for label in installs:  # how long each install's removals outlived their runs (0: not left running)
        waits = sorted(w for p, w in prior if p == label)
        if waits:
            summary.setdefault("removalAfterRun", {})[label.strip() or "this"] = {
                "median": statistics.median(waits), "max": waits[-1], "runs": len(waits)}
    return summary


def report(out: dict) -> None:
    med, bare, floor_ = out["medians"], out["medians"]["python -c pass"], out["medians"]["floor"]
    there = med.get("floor, images there", floor_)
    s = out["shape"]
    print(f"\n{s['artifacts']} artifacts x {s['files']} files ({s['totalFiles']} input files); medians of "
          f"{out['rounds']} alternating rounds")
    print(f"{'command':<28} {'wall s':>7} {'- bare python':>14} {'x bare':>7} {'x floor':>8} {'x floor 200':>11} "
          f"{'imports':>16}")
    for name, wall in med.items():
        imp = out["imports"].get(name)
        imp_s = "" if imp is None else (f"{imp:.1f} ms" if isinstance(imp, float) else f"{imp[0]:.1f} ms/{imp[1]}")
        print(f"{name:<28} {wall:7.3f} {1000 * (wall - bare):11.1f} ms {wall / bare:7.2f} {wall / floor_:8.2f} "
              f"{wall / there:11.2f} "
              f"{imp_s:>16}")
    print(f"\n{'restart phases (s)':<28} " + " ".join(f"{p:>7}" for p in (*PHASES, "other")))
    for name, ph in out["phases"].items():
        other = med[name] - sum(v for k, v in ph.items() if k not in ("record",)) - 0.0
        print(f"{name:<28} " + " ".join(f"{ph[p]:7.3f}" for p in PHASES) + f" {other:7.3f}")
    print("(record is part of act; other = wall - the phases: the interpreter's start, output, exit)")
    print("replayed (replay.py), rounds of " + str(out["rounds"]) + ": "
          + ", ".join(f"{k} {v}" for k, v in out.get("replayed", {}).items()))
    print("\nrestart at registry.concurrency N (checks at once): median wall s (hash + check s)")
    for tool, per in out.get("concurrency", {}).items():
        print(f"  {tool:<7} " + ", ".join(f"{n}: {v['wall']:.3f} ({v['hashAndCheck']:.3f})" for n, v in per.items()))
    print("\nrename every image (retags, no builds): medians")
    for tool, r in out.get("rename", {}).items():
        m = r["median"]
        procs = ", ".join(f"{k} {v:.1f}" for k, v in r.get("processes", {}).items() if k != "all")
        print(f"  {tool:<20} wall {m['wall']:.2f}s, act {m['act']:.2f}s, {r['callsPerArtifact']:.1f} registry calls an "
              f"artifact; plain copies of every image {r['copiesWall']:.2f}s; act/copies {r['actVsCopies']:.2f}; "
              f"{r.get('processes', {}).get('all', 0):.1f} tool processes an artifact ({procs})")
    report_one_file(out)


def report_one_file(out: dict) -> None:
    """The one-file-changed scenario's lines: regless's part against the builder's, per install and tool."""
    print("\none file changed (one build): medians (share: median of each run's; vs first: regless's part "
          "against the first install's in the same round)")
    for name, r in out.get("oneFile", {}).items():
        if name == "removalAfterRun":
            continue
        print(f"  {name:<28} wall {r['wall']:.3f}s = builder (buildah build + push) {r['build']:.3f}s + regless "
              f"{r['regless']:.3f}s ({100 * r['reglessShare']:.1f}%; vs first {r['reglessVsFirst']:.2f})")
    for label, w in out.get("oneFile", {}).get("removalAfterRun", {}).items():
        print(f"  {label}: the storage's lock still held at the next run's start (a removal left running) "
              f"median {1000 * w['median']:.1f} ms, max {1000 * w['max']:.1f} ms over {w['runs']} runs (waited out, "
              "untimed)")

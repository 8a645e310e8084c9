"""bin/bench: regless against a real local registry, with two baselines measured in the same run.

Scenarios (each a `regless build` of a generated project):
  cold       empty registry and index: every artifact built
  restart    nothing changed, warm index (the "faster restart")
  fresh      empty index, every image already in the registry (a new CI runner)
  one-file   one input file of one artifact changed
  rename     every image name changed (--default-repo): retags, no builds
  slow       restart through a proxy that adds 100 ms to every registry request
Baselines: peer = `buildah build --layers` + `buildah push` for every artifact (what a user
without regless runs); floor = stat every input file + one concurrent manifest HEAD per artifact.
Also: 64 registry checks through the 100 ms proxy, at concurrency 1 and 16 and 64, with skopeo and
(where it is on PATH) crane.
--platforms: the restart of multi-platform artifacts (linux/amd64 + linux/arm64) against single-platform ones.
--shares N: a cold build by one runner against N runners at once (regless build --share K/N).
regless's runs use regless's own buildah storage in the bench's folder (XDG_DATA_HOME there, as a user who
chose no storage has), each timed run once the removal the run before left running has ended.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import harness  # noqa: E402
from bench.generate import Shape, generate  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402

REGLESS = str(Path(sys.executable).with_name("regless"))
STORAGE = ["--storage-driver", "vfs"]


def storage_env(folder: Path) -> dict[str, str]:
    """Environment giving buildah its own image storage under `folder`, so runs never share a layer cache:
    a storage the user chose (CONTAINERS_STORAGE_CONF), for the peer's buildah loop."""
    return {**os.environ, "CONTAINERS_STORAGE_CONF": harness.storage_conf(folder)}


def own_storage_env(folder: Path) -> dict[str, str]:
    """Environment for regless's runs: regless's own buildah storage, as a user who chose none has, under
    `folder` (XDG_DATA_HOME; CONTAINERS_STORAGE_CONF unset), so that runs given other folders never share
    a layer cache. On its own storage regless leaves the removal of a run's images running after the run
    (storage.Claim.release), which a storage the user chose would not show."""
    env = {k: v for k, v in os.environ.items() if k != "CONTAINERS_STORAGE_CONF"}
    env["XDG_DATA_HOME"] = str(folder)
    return env


REGLESS_ENV: dict[str, str] = {}


def regless(project: Path, repo: str, cache: Path, base: str, *extra: str) -> dict:
    """One timed `regless build` (JSON out): its wall time, builds, registry calls, outcomes and phases, on a
    settled storage (the removal the run before left running waited out first, untimed: bench.restart.settle)."""
    from bench.restart import settle

    env = {**REGLESS_ENV, "REGLESS_CACHE_DIR": str(cache), "REGLESS_BASE_IMAGE": base, "NO_COLOR": "1"}
    settle(env)
    t0 = time.perf_counter()
    p = subprocess.run([REGLESS, "build", "-q", "--output", "json", "--default-repo", repo, *extra], cwd=project,
                       env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"bench: regless build failed:\n{p.stderr[-3000:]}")
    out = json.loads(p.stdout)
    outcomes: dict[str, int] = {}
    for a in out["artifacts"]:
        outcomes[a["outcome"]] = outcomes.get(a["outcome"], 0) + 1
    return {"wall": wall, "builds": out["buildsStarted"], "registryCalls": out["registryCalls"],
            "outcomes": outcomes, "phases": out["phases"]}


def peer(project: Path, shape: Shape, repo: str, base: str, env: dict[str, str]) -> dict:
    """What a user without regless runs: build with buildah's layer cache, then push, for every artifact."""
    t0 = time.perf_counter()
    for a in range(shape.artifacts):
        name, ref = f"a{a:03d}", f"{repo}/a{a:03d}:peer"
        argv = ["buildah", *STORAGE, "build", "--isolation", "chroot", "--layers", "-q", "-f", f"{name}/Dockerfile",
                "--tls-verify=false", "--build-arg", f"BASE={base}", "-t", ref, "."]
        subprocess.run(argv, cwd=project, check=True, stdout=subprocess.DEVNULL, env=env)
        subprocess.run(["buildah", *STORAGE, "push", "-q", "--tls-verify=false", ref, f"docker://{ref}"], check=True,
                       env=env)
    return {"wall": time.perf_counter() - t0, "builds": shape.artifacts, "registryCalls": None}


def floor(project: Path, shape: Shape, registry: str, repo_path: str, tags: dict[str, str] | None = None) -> dict:
    """The least work: stat every input file, and one HEAD per artifact, all at once: of the tag `peer`,
    which regless's registry does not have (a 404), or with `tags` (artifact -> tag) of the images there
    (a 200: the registry reads the manifest to answer, as it does for a restart's checks)."""
    t0 = time.perf_counter()
    n = 0
    for dirpath, _dirs, files in os.walk(project):
        for f in files:
            os.lstat(os.path.join(dirpath, f))
            n += 1

    def head(a: int) -> int:
        tag = tags[f"a{a:03d}"] if tags else "peer"
        req = urllib.request.Request(f"http://{registry}/v2/{repo_path}/a{a:03d}/manifests/{tag}", method="HEAD",
                                     headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(head, range(shape.artifacts)))
    return {"wall": time.perf_counter() - t0, "builds": 0, "registryCalls": shape.artifacts, "files": n}


def registry_checks(registry: str, base: str | None = None, n: int = 64, rounds: int = 3) -> dict:
    """n digest checks of images that are there (a restart's checks) through a proxy adding 100 ms per
    request, at several concurrencies (the median of `rounds` rounds; one round at concurrency 1), with
    skopeo and, where it is on PATH, crane, alternating round by round so that both meet the same
    machine. The proxy runs in a process of its own, as a remote registry would: its work is not
    regless's."""
    import shutil

    from reglessbuild import retrying as retry
    from reglessbuild.refs import parse
    from reglessbuild.registry import Crane, Reliable, Skopeo

    base = (base or harness.make_base_image(registry)).split("@")[0]
    tag = "0" * 32
    for i in range(n):  # one repository per check, as for n artifacts
        subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
                        f"docker://{base}", f"docker://{registry}/bench/checks{i}:{tag}"], check=True)
    tools = {"skopeo": Skopeo(insecure=("127.0.0.1",))}
    if shutil.which("crane"):
        tools["crane"] = Crane(insecure=("127.0.0.1",))
    out: dict = {}
    proxy = subprocess.Popen([sys.executable, str(HERE.parent / "faultproxy.py"), registry, "0.1"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        address = proxy.stdout.readline().strip()
        refs = [parse(f"{address}/bench/checks{i}:{tag}") for i in range(n)]
        for conc in (1, 16, 64):
            walls: dict[str, list[float]] = {name: [] for name in tools}
            for _ in range(1 if conc == 1 else rounds):
                for name, adapter in tools.items():
                    reg = Reliable(adapter, retry.Policy())
                    t0 = time.perf_counter()
                    with ThreadPoolExecutor(conc) as pool:
                        found = list(pool.map(reg.digest, refs))
                    walls[name].append(time.perf_counter() - t0)
                    assert all(d and d.startswith("sha256:") for d in found), f"{name}: a check found nothing"
            for name, w in walls.items():
                out.setdefault(name, {})[f"concurrency {conc}"] = sorted(w)[len(w) // 2]
                out[name][f"concurrency {conc} rounds"] = w
    finally:
        proxy.stdin.close()
        proxy.wait(10)
    return out


def _checks_line(rc: dict) -> str:
    lines = []
    for name, r in rc.items():
        lines.append(f"64 registry checks with {name}, 100 ms added per request (median of 3 rounds): " +
                     ", ".join(f"{k}: {v:.2f}s" for k, v in r.items() if not k.endswith("rounds")) +
                     " (rounds at 64: " + ", ".join(f"{v:.2f}" for v in r["concurrency 64 rounds"]) + ")")
    if "crane" in rc:
        ratio = rc["crane"]["concurrency 64"] / rc["skopeo"]["concurrency 64"]
        lines.append(f"crane/skopeo at concurrency 64, same run: {ratio:.2f}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes: under 2 minutes")
    ap.add_argument("--artifacts", type=int)
    ap.add_argument("--files", type=int, help="input files per artifact")
    ap.add_argument("--size", type=int, help="bytes per file")
    ap.add_argument("--shared", type=float, help="share of files common to several artifacts")
    ap.add_argument("--run-steps", action="store_true", help="FROM a busybox base with a RUN step")
    ap.add_argument("--json", type=Path, default=Path("bench-results.json"))
    ap.add_argument("--hashing", action="store_true",
                    help="only the hashing benchmark: 100,000 files and 1 GB, cold and warm (--quick: a tenth)")
    ap.add_argument("--checks", action="store_true",
                    help="only the 64 registry checks through a proxy adding 100 ms per request")
    ap.add_argument("--platforms", action="store_true",
                    help="only multi-platform against single-platform restarts (10 artifacts; --artifacts)")
    ap.add_argument("--retries", type=float, metavar="DEADLINE", nargs="?", const=60.0,
                    help="only what one check costs against a registry that keeps failing, per tool, within "
                         "a registry.timeout of DEADLINE seconds (60)")
    ap.add_argument("--shares", type=int, metavar="N",
                    help="only a cold build by one runner against N runners at once, each with --share K/N "
                         "(12 artifacts of 200 files; --artifacts, --files)")
    ap.add_argument("--restart", action="store_true",
                    help="only a no-change restart against the floor, alternating with bare python, regless version "
                         "and --help, with skopeo and crane (where on PATH); per-phase times and -X importtime "
                         "(default 20 artifacts x 500 files; --rounds)")
    ap.add_argument("--rounds", type=int, default=7, help="--restart: alternating rounds (medians)")
    ap.add_argument("--one-file", action="store_true",
                    help="with --restart: only the one-file-changed scenario (regless's part against buildah's "
                         "build + push), this install and each --baseline in turn, --rounds rounds")
    ap.add_argument("--baseline", metavar="LABEL=REGLESS", action="append", default=[],
                    help="--restart: another regless executable (an older install) run alternately with this one, "
                         "its rows labelled LABEL; may be repeated")
    args = ap.parse_args()
    if args.restart:
        from bench.restart import run as restart

        shape = Shape(artifacts=args.artifacts or 20, files=args.files or 500, size=args.size or 1024,
                      shared=0.2 if args.shared is None else args.shared, run_steps=args.run_steps)
        args.json.write_text(json.dumps({"restart": restart(shape, REGLESS, floor, own_storage_env, rounds=args.rounds,
                                                            baselines=dict(b.split("=", 1) for b in args.baseline),
                                                            one_file_only=args.one_file)}, indent=2))
        return
    if args.shares:
        from bench.fanout import lines
        from bench.fanout import run as fanout_bench

        shape = Shape(artifacts=args.artifacts or 12, files=args.files or 200, size=args.size or 1024,
                      shared=0.2 if args.shared is None else args.shared, run_steps=args.run_steps)
        with tempfile.TemporaryDirectory(prefix="regless-bench-") as tmp_s:
            (Path(tmp_s) / "registry").mkdir()
            reg = harness.LocalRegistry(Path(tmp_s) / "registry").start()
            generate(Path(tmp_s) / "project", shape)
            try:
                r = fanout_bench(Path(tmp_s) / "project", reg.address, harness.make_base_image(reg.address),
                                 Path(tmp_s) / "runs", args.shares, REGLESS, own_storage_env)
            finally:
                reg.stop()
        print("\n".join(lines(r)))
        args.json.write_text(json.dumps({"shares": r, "shape": shape.__dict__}, indent=2))
        return
    if args.platforms:
        from bench.platforms import run as platforms_bench

        shape = Shape(artifacts=args.artifacts or 10, files=args.files or 200, size=args.size or 1024,
                      shared=0.2 if args.shared is None else args.shared, run_steps=True)
        args.json.write_text(json.dumps({"platforms": platforms_bench(shape, regless, own_storage_env, REGLESS_ENV)},
                                        indent=2))
        return
    if args.retries:
        from bench.retries import run as retries

        rows = retries(args.retries)
        for r in rows:
            print(f"{r['fault']:<18} {r['tool']:<7} tool calls {r['calls']:>3}  requests {r['requests']:>4} "
                  f"({r['requests'] / max(r['calls'], 1):.1f} a call)  {r['seconds']:.1f} s")
        args.json.write_text(json.dumps({"retries": rows}, indent=2))
        return
    if args.checks:
        with tempfile.TemporaryDirectory(prefix="regless-bench-") as tmp_s, \
                harness.LocalRegistry(Path(tmp_s)) as reg:
            rc = registry_checks(reg.address)
        print(_checks_line(rc))
        args.json.write_text(json.dumps({"registryChecks64": rc}, indent=2))
        return
    if args.hashing:
        from bench.hashing import run as hashing

        n = 10_000 if args.quick else 100_000
        r = hashing(n, (1 << 30) * n // 100_000)
        print(f"hashing {r['files']} files, {r['bytes'] / 1e9:.2f} GB, {r['engine']} engine (medians): "
              f"cold {r['coldSeconds']:.2f}s "
              f"({r['coldGBps']:.2f} GB/s; reading every byte without hashing took {r['readOnlySeconds']:.2f}s, "
              f"cold/read-only = {r['coldVsReadOnly']:.2f}), warm {r['warmSeconds']:.3f}s "
              f"({r['warmBytesRead']} bytes read)")
        print(f"python engine, same run: cold {r['pythonColdSeconds']:.2f}s (c/python = {r['coldVsPython']:.2f}), "
              f"warm {r['pythonWarmSeconds']:.3f}s (c/python = {r['warmVsPython']:.2f})")
        print(f"references in C, same run: find stat-ing every file {r['cStatSeconds']:.2f}s (warm/that = "
              f"{r['warmVsCStat']:.2f}); cat of every byte on every core {r['cReadSeconds']:.2f}s "
              f"(cold/that = {r['coldVsCRead']:.2f})")
        args.json.write_text(json.dumps({"hashing": r}, indent=2))
        return
    shape = Shape(artifacts=10, files=200) if args.quick else Shape(artifacts=30)  # 50: --artifacts 50
    shape = Shape(artifacts=args.artifacts or shape.artifacts, files=args.files or shape.files,
                  size=args.size or shape.size, shared=shape.shared if args.shared is None else args.shared,
                  run_steps=args.run_steps)
    results: dict = {"shape": shape.__dict__ | {"totalFiles": shape.total_files}, "scenarios": {}}
    with tempfile.TemporaryDirectory(prefix="regless-bench-") as tmp_s:
        tmp = Path(tmp_s)
        (tmp / "registry").mkdir()
        with harness.LocalRegistry(tmp / "registry") as reg:
            base = harness.make_base_image(reg.address)
            project = tmp / "project"
            t0 = time.perf_counter()
            generate(project, shape)
            print(f"generated {shape.artifacts} artifacts, {shape.total_files} input files "
                  f"({time.perf_counter() - t0:.1f}s)", flush=True)
            repo, cache = f"{reg.address}/bench", tmp / "cache"
            REGLESS_ENV.update(own_storage_env(tmp / "storage-regless"))
            sc = results["scenarios"]
            # cold without inputs records first, into a registry, image storage and cache of their own (so
            # that neither run finds layers of the other): what records add to a cold build
            (tmp / "registry-norecords").mkdir()
            with harness.LocalRegistry(tmp / "registry-norecords") as bare_reg:
                REGLESS_ENV.update(own_storage_env(tmp / "storage-norecords"))
                bare_base = harness.make_base_image(bare_reg.address)
                sc["cold-no-records"] = regless(project, f"{bare_reg.address}/bench", tmp / "cache-norecords",
                                                bare_base, "--no-records")
            REGLESS_ENV.update(own_storage_env(tmp / "storage-regless"))
            sc["cold"] = regless(project, repo, cache, base)
            print(f"cold with inputs records / without: {sc['cold']['wall'] / sc['cold-no-records']['wall']:.3f}",
                  flush=True)
            print("cold done", flush=True)
            sc["restart"] = regless(project, repo, cache, base)
            sc["fresh"] = regless(project, repo, tmp / "cache-fresh", base)
            victim = next((project / "a000" / "src").rglob("*.dat"))
            victim.write_bytes(victim.read_bytes() + b"changed")
            sc["one-file"] = regless(project, repo, cache, base)
            sc["rename"] = regless(project, f"{reg.address}/renamed", cache, base)
            with FaultProxy(reg.address, delay=0.1) as proxy:
                sc["slow"] = regless(project, f"{proxy.address}/bench", cache, base)
            print("regless scenarios done; running the peer loop twice (cold, then restart)", flush=True)
            victim.write_bytes(victim.read_bytes()[:-7])  # the project as it was for cold and restart
            peer_env = storage_env(tmp / "storage-peer")
            # the peer pushes to a registry of its own: in regless's registry its layers would already be
            # there (containers/image mounts them from regless's repositories instead of uploading)
            (tmp / "registry-peer").mkdir()
            with harness.LocalRegistry(tmp / "registry-peer") as peer_reg:
                results["peerCold"] = peer(project, shape, f"{peer_reg.address}/peer", base, peer_env)
                results["peer"] = peer(project, shape, f"{peer_reg.address}/peer", base, peer_env)
                results["floor"] = floor(project, shape, peer_reg.address, "peer")
            results["registryChecks64"] = registry_checks(reg.address, base)
            from bench.restart import settle

            settle(own_storage_env(tmp / "storage-regless"))
            settle(own_storage_env(tmp / "storage-norecords"))
    peer_wall, floor_wall = results["peer"]["wall"], results["floor"]["wall"]
    rows = [("scenario", "wall s", "builds", "registry calls", "× peer", "× floor")]
    for name, r in results["scenarios"].items():
        # cold compares with the peer's cold loop (empty layer cache); the rest with its restart loop
        base_wall = results["peerCold"]["wall"] if name.startswith("cold") else peer_wall
        r["xPeer"], r["xFloor"] = r["wall"] / base_wall, r["wall"] / floor_wall
        rows.append((name, f"{r['wall']:.2f}", str(r["builds"]), str(r["registryCalls"]),
                     f"{r['xPeer']:.3f}", f"{r['xFloor']:.1f}"))
    rows.append(("peer cold (buildah loop)", f"{results['peerCold']['wall']:.2f}", str(shape.artifacts), "-",
                 "1 (cold)", "-"))
    rows.append(("peer restart (buildah loop)", f"{peer_wall:.2f}", str(results["peer"]["builds"]), "-", "1", "-"))
    rows.append(("floor (stat + HEAD)", f"{floor_wall:.3f}", "0", str(results["floor"]["registryCalls"]), "-", "1"))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    print(f"\n{shape.artifacts} artifacts x {shape.files} files x {shape.size} B "
          f"({shape.total_files} input files, shared {shape.shared:.0%}, RUN steps {shape.run_steps})")
    for r in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=False))))
    rc = results["registryChecks64"]
    print("\n" + _checks_line(rc))
    args.json.write_text(json.dumps(results, indent=2))
    print(f"\nwritten to {args.json}")


if __name__ == "__main__":
    main()

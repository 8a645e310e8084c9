"""Builders and the artifact graph: argv contracts, kaniko end to end (through its double), requires,
concurrency, failure isolation, cancel."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import harness
from conftest import REGLESS, ROOT
from reglessbuild.builders.buildah import build_argv, push_argv
from reglessbuild.builders.kaniko import build_argv as kaniko_argv
from reglessbuild.builders.protocol import BuildRequest
from reglessbuild.config import BuildahSettings, KanikoSettings
from reglessbuild.refs import parse

KANIKO_DOUBLE = ROOT / "tests" / "doubles" / "kaniko_executor.py"
REQ = BuildRequest(context=Path("/ctx"), dockerfile=Path("/ctx/sub/Dockerfile"),
                   destination=parse("127.0.0.1:5000/t/app:" + "a" * 32), target="prod", platform="linux/amd64",
                   build_args=(("V", "1"), ("BASE", "r/b:x@sha256:" + "b" * 64)), insecure_pull=True,
                   insecure_push=True)


def test_buildah_argv():
    assert build_argv(REQ, BuildahSettings("vfs", "chroot", True)) == [
        "buildah", "--storage-driver", "vfs", "build", "--isolation", "chroot", "--layers=true",
        "--log-level=debug", "--retry-delay=100ms", "-f", "/ctx/sub/Dockerfile", "--timestamp", "0",
        "--target", "prod", "--platform", "linux/amd64",
        "--build-arg", "V=1", "--build-arg", "BASE=r/b:x@sha256:" + "b" * 64, "--tls-verify=false",
        "-t", "127.0.0.1:5000/t/app:" + "a" * 32, "/ctx"]
    assert push_argv(REQ, BuildahSettings("overlay", "chroot", False, retry=2), "/tmp/d") == [
        "buildah", "--storage-driver", "overlay", "push", "--log-level=debug", "--retry=2", "--retry-delay=100ms",
        "--digestfile", "/tmp/d", "--tls-verify=false",
        "127.0.0.1:5000/t/app:" + "a" * 32, "docker://127.0.0.1:5000/t/app:" + "a" * 32]


def test_buildah_argv_without_a_fixed_timestamp():
    argv = build_argv(REQ, BuildahSettings("vfs", "chroot", True, timestamp=None))
    assert "--timestamp" not in argv
    assert build_argv(REQ, BuildahSettings(timestamp=1700000000))[11:13] == ["--timestamp", "1700000000"]


def test_kaniko_argv():
    assert kaniko_argv(REQ, KanikoSettings("/kaniko/executor", True, "r/cache"), "/tmp/d") == [
        "/kaniko/executor", "--context=dir:///ctx", "--dockerfile=/ctx/sub/Dockerfile",
        "--destination=127.0.0.1:5000/t/app:" + "a" * 32, "--digest-file=/tmp/d", "--push-retry=3",
        "--target=prod", "--custom-platform=linux/amd64", "--build-arg=V=1",
        "--build-arg=BASE=r/b:x@sha256:" + "b" * 64, "--cache=true", "--cache-repo=r/cache", "--reproducible",
        "--insecure", "--skip-tls-verify", "--insecure-pull", "--skip-tls-verify-pull"]


def test_kaniko_argv_without_reproducible():
    argv = kaniko_argv(REQ, KanikoSettings(reproducible=False), "/tmp/d")
    assert "--reproducible" not in argv and argv[0] == "/kaniko/executor"


def test_kaniko_double_refuses_unknown_flags():
    p = subprocess.run([sys.executable, str(KANIKO_DOUBLE), "--no-such-flag"], capture_output=True, text=True)
    assert p.returncode == 1 and "unknown flag: --no-such-flag" in p.stderr


def test_kaniko_path_end_to_end_through_the_double(demo, tmp_path):
    cfg = demo.path / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("  kind: buildah\n", f"  kind: kaniko\n  kaniko: {{executor: {KANIKO_DOUBLE}}}\n"))
    log = tmp_path / "kaniko.log"
    demo.env["KANIKO_DOUBLE_LOG"] = str(log)
    first = demo.build()
    assert first.outcomes() == {"web": "built", "tools": "built", "app": "built"}
    assert first.json()["builder"] == {"name": "kaniko", "source": "config"}
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(calls) == 3
    app = next(c for c in calls if any("/app:" in a for a in c if a.startswith("--destination=")))
    assert any(a.startswith("--build-arg=TOOLS_IMAGE=") and "@sha256:" in a for a in app)
    assert "--insecure" in app and any(a.startswith("--context=dir://") for a in app)
    for a in first.json()["artifacts"]:
        assert demo.digest(a["reference"].split("@")[0]) == a["digest"]
    assert demo.build().outcomes() == {"web": "cached", "tools": "cached", "app": "cached"}
    assert len(log.read_text().splitlines()) == 3
    # the builder kind is an input: the same project under buildah is another hash
    buildah_hash = demo.run("hash", "web", "-f", str(ROOT / "fixtures" / "demo" / "regless.yaml"))
    assert buildah_hash.stdout.strip() != next(a["hash"] for a in first.json()["artifacts"] if a["name"] == "web")


def test_requires_order_concurrency_and_build_arg(make_project):
    proj = make_project("graph")
    res = proj.build()
    assert res.outcomes() == {"a": "built", "b": "built", "c": "built"}
    arts = {a["name"]: a for a in res.json()["artifacts"]}
    ev = [e for e in harness.events(proj.builds_log)]
    builds = {pid: argv for kind, pid, argv in ev if kind == "start" and argv.split()[2:3] == ["build"]}
    def built(argv: str) -> str:  # the artifact whose image this build tags (-t REF)
        words = argv.split()
        return words[words.index("-t") + 1].rsplit("/", 1)[1].split(":")[0]

    order = [(kind, built(builds[pid])) for kind, pid, _ in ev if pid in builds]
    # a and b overlap (both start before either ends); c starts after both end
    assert order.index(("start", "a")) < order.index(("end", "b")) and \
        order.index(("start", "b")) < order.index(("end", "a"))
    assert order.index(("start", "c")) > max(order.index(("end", "a")), order.index(("end", "b")))
    c_build = next(argv for argv in builds.values() if built(argv) == "c")
    assert f"A_IMAGE={arts['a']['reference']}" in c_build and f"B_IMAGE={arts['b']['reference']}" in c_build
    # a change in a required image rebuilds its dependent, and only that
    (proj.path / "a" / "a.txt").write_text("a2\n")
    assert proj.build().outcomes() == {"a": "built", "b": "cached", "c": "built"}


def test_concurrency_one_builds_one_at_a_time(make_project):
    proj = make_project("graph")
    cfg = proj.path / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("concurrency: 2", "concurrency: 1"))
    proj.build()
    running = 0
    builds = set()
    for kind, pid, argv in harness.events(proj.builds_log):
        if kind == "start" and argv.split()[2:3] == ["build"]:
            builds.add(pid)
            running += 1
            assert running == 1, "two builds ran at once with builder.concurrency: 1"
        elif kind == "end" and pid in builds:
            running -= 1


def _slow_project(proj) -> None:
    df = proj.path / "tools" / "Dockerfile"
    df.write_text(df.read_text() + "RUN sleep 3141\n")


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)])
def test_cancel_stops_every_builder_and_records_nothing_unfinished(demo, sig, code):
    _slow_project(demo)
    p = subprocess.Popen([REGLESS, "build", "--default-repo", demo.repo], cwd=demo.path, env=demo.env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until the slow RUN step is running
        if subprocess.run(["pgrep", "-f", "sleep 3141"], capture_output=True).returncode == 0:
            break
        time.sleep(0.2)
    else:
        p.kill()
        pytest.fail("the slow build never started")
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    assert p.returncode == code, err
    assert "cancelled" in err
    assert subprocess.run(["pgrep", "-f", "sleep 3141"], capture_output=True).returncode == 1, "builder left running"
    assert subprocess.run(["pgrep", "-f", f"{demo.path}/tools"], capture_output=True).returncode == 1
    tools_hash = demo.run("hash", "tools").stdout.strip()
    ls = demo.run("cache", "ls", "--json")
    assert ls.returncode == 0
    assert tools_hash not in ls.stdout


def test_kaniko_executor_missing_is_exit_2(demo):
    cfg = demo.path / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("  kind: buildah\n", "  kind: kaniko\n  kaniko: {executor: /nope/executor}\n"))
    res = demo.run("build")
    assert res.returncode == 2 and "kaniko executor /nope/executor not found" in res.stderr


def test_push_retried_without_rebuild_after_a_transient_fault(demo, registry):
    from faultproxy import FaultProxy, Rule

    # seen here: `buildah push --retry 5` gives up on one 503 answered while it checks for an existing blob
    # (no inputs record: its blobs, pushed to web's repository while web builds, would meet the 503 first)
    with FaultProxy(registry.address, rules=[Rule(r"^HEAD /v2/.*/web/blobs/", "503", times=1)]) as proxy:
        res = demo.run("build", "--output", "json", "web", "--no-records", "--default-repo",
                       f"{proxy.address}/faults", default_repo=False)
        assert res.returncode == 0, res.stderr
        assert res.outcomes() == {"web": "built"}
        assert [x[2] for x in proxy.injected()] == ["503"]
        # waiting is never silent: the push's rerun is announced in the artifact's log (and its live line)
        log = open(res.json()["artifacts"][0]["log"]).read()
        assert re.search(r"^regless: buildah push failed .*\(.*503.*\), trying again in \d+\.\ds \(\d+s of \d+s\)$",
                         log, re.M), log
    calls = [c.split()[2] for c in harness.calls(demo.builds_log)]
    assert calls.count("build") == 1 and calls.count("push") == 2, calls


def test_manifest_push_runs_with_the_debug_log_regless_reads():
    from reglessbuild.builders.buildah_index import manifest_push_argv

    argv = manifest_push_argv(REQ, BuildahSettings("vfs", "chroot", True), "regless-index-1", "/tmp/d")
    assert argv[:6] == ["buildah", "--storage-driver", "vfs", "manifest", "push", "--log-level=debug"]
    assert argv[-2:] == ["regless-index-1", "docker://127.0.0.1:5000/t/app:" + "a" * 32]


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [m for m in graph if m == start or m.startswith(start + ".")]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph.get(m, ()))
    return seen


def test_builders_and_registry_adapters_share_the_retry_layer_without_importing_each_other():
    """One retry layer (retrying.py) and one fault classifier (faults.py) that both layers use, and
    neither layer reaching the other through its top-level imports (issue 16, point 3)."""
    from test_imports import import_graph

    graph = import_graph()
    from_builders, from_registry = _reach(graph, "reglessbuild.builders"), _reach(graph, "reglessbuild.registry")
    assert not {m for m in from_builders if m.startswith("reglessbuild.registry")}
    assert not {m for m in from_registry if m.startswith("reglessbuild.builders")}
    assert {"reglessbuild.retrying", "reglessbuild.faults"} <= from_builders & from_registry

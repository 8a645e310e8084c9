"""buildah's images in a storage of regless's own per user, removed once pushed; no run shows another's names."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
import types
import uuid
from pathlib import Path

import harness
from conftest import REGLESS


def _own(demo, tmp_path: Path) -> dict[str, str]:
    """The demo's environment without the test session's storage: regless's own, under XDG_DATA_HOME."""
    env = {k: v for k, v in demo.env.items() if k != "CONTAINERS_STORAGE_CONF"}
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    return env


def _settled(lock: Path) -> None:
    """Wait, as the next run's claim does, for the removal a run left running on regless's own storage
    (harness.settled: the lock polled, never sleep-and-hope)."""
    harness.settled(lock)


def _listing(conf: Path, fmt: str) -> list[str]:
    """`buildah images` of the storage `conf` describes, one line an image in `fmt`."""
    p = subprocess.run(["buildah", "--storage-driver", "vfs", "images", "--format", fmt],
                       env={**os.environ, "CONTAINERS_STORAGE_CONF": str(conf)}, capture_output=True, text=True,
                       check=True)
    return p.stdout.splitlines()


def _names(conf: Path) -> list[str]:
    return _listing(conf, "{{.Name}}:{{.Tag}}")


def test_images_live_in_reglesss_own_storage_and_leave_it_once_pushed(demo, tmp_path):
    env = _own(demo, tmp_path)
    res = demo.run("build", "-v", env=env)
    assert res.returncode == 0, res.stderr
    conf = tmp_path / "data" / "regless" / "containers" / "storage-vfs.conf"
    assert f'graphroot = "{conf.parent / "vfs"}"' in conf.read_text()
    assert (conf.parent / "vfs").is_dir()
    # what it built was pushed, so removed, and so is tools as pulled by digest for app's FROM
    _settled(conf.parent / "regless.lock")
    assert not [n for n in _names(conf) if demo.repo in n], _names(conf)
    kept = demo.run("build", "--no-cache", "--keep-images", env=env)
    assert kept.returncode == 0, kept.stderr
    assert sum(1 for n in _names(conf) if n.startswith(demo.repo) and not n.endswith(":<none>")) == 3
    prune = demo.run("cache", "prune", "--builder-storage", env=env)
    assert prune.returncode == 0 and "emptied regless's buildah storage" in prune.stdout, prune.stderr
    assert _names(conf) == []
    # a run against another registry path shows no name of the runs before it
    other = f"{demo.registry}/o{uuid.uuid4().hex[:8]}"
    demo.run("build", "--no-cache", env=env)
    again = demo.run("build", "-v", "--no-cache", "--default-repo", other, env=env, default_repo=False)
    assert again.returncode == 0 and f"Successfully tagged {other}/web:" in again.stderr, again.stderr
    assert demo.repo not in again.stderr


def test_a_storage_the_user_chose_is_used_and_not_emptied(demo, tmp_path):
    env = {**demo.env, "XDG_DATA_HOME": str(tmp_path / "data")}  # CONTAINERS_STORAGE_CONF: the session's
    assert demo.run("build", env=env).returncode == 0
    assert not (tmp_path / "data" / "regless").exists()
    refused = demo.run("cache", "prune", "--builder-storage", env=env)
    assert refused.returncode == 2 and "regless empties only its own" in refused.stderr


def _images(conf: Path) -> list[str]:
    """The images in a storage, named or not (buildah's layer cache, intermediate images, left out)."""
    return _listing(conf, "{{.ID}} {{.Name}}:{{.Tag}}")


def test_a_multi_platform_build_leaves_no_image_behind_once_pushed(demo, tmp_path):
    """Each platform's image of an index leaves regless's storage once pushed, as a one-platform image
    does; it used to stay there unnamed (<none>), one per platform per build. --keep-images keeps them."""
    env = _own(demo, tmp_path)
    conf = tmp_path / "data" / "regless" / "containers" / "storage-vfs.conf"
    several = ["--platform", "linux/amd64,linux/arm64", "web"]  # web is FROM scratch, COPY only: no emulator
    res = demo.run("build", "-v", *several, env=env)
    assert res.returncode == 0, res.stderr
    assert "leaves buildah's storage at the end of the run" in res.stderr and "-linux-arm64-" in res.stderr, res.stderr
    _settled(conf.parent / "regless.lock")
    assert _images(conf) == [], res.stderr[-3000:]
    kept = demo.run("build", "--no-cache", "--keep-images", *several, env=env)
    assert kept.returncode == 0, kept.stderr
    assert _images(conf), "--keep-images kept none of the platform images"  # unnamed, as before


def test_kept_bases_are_a_cache_never_a_stale_source():
    """Bases stay in the storage as a pull cache (README): safe only while buildah keeps its default pull
    policy (`--pull=true`: ask the registry whether the tag moved), which neither build line changes."""
    from reglessbuild.builders.buildah import build_argv
    from reglessbuild.builders.buildah_index import platform_build_argv
    from reglessbuild.builders.protocol import BuildRequest
    from reglessbuild.refs import parse
    from reglessbuild.settings import BuildahSettings

    req = BuildRequest(context=Path("/ctx"), dockerfile=Path("/ctx/Dockerfile"),
                       destination=parse("r.example/a:" + "0" * 32))
    for argv in (build_argv(req, BuildahSettings()),
                 platform_build_argv(req, BuildahSettings(), "linux/arm64", "list", "r.example/a:x")):
        assert [a for a in argv if a.startswith("--pull")] == [], argv


def test_a_run_leaves_the_pulled_required_artifact_while_another_run_uses_the_storage(demo, tmp_path):
    """Two runs at once on one storage: one's removal of an image (its own build's name, or `tools@digest`
    pulled for app's FROM) could take it from under the other's build, which shares it. A run removes
    images only where no other run holds the storage's claim, else leaves them to the next run alone."""
    env = _own(demo, tmp_path)
    lock = tmp_path / "data" / "regless" / "containers" / "regless.lock"
    lock.parent.mkdir(parents=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # another regless run, building
        res = demo.run("build", "-v", env=env)
        assert res.returncode == 0, res.stderr
        assert "another regless run uses buildah's storage" in res.stderr
        conf = lock.parent / "storage-vfs.conf"
        left = [n for n in _names(conf) if demo.repo in n]
        assert {n.split("/")[-1].split(":")[0] for n in left} == {"web", "tools", "app"}, left
    finally:
        os.close(fd)  # that run ended
    again = demo.run("build", "-v", env=env)
    assert again.returncode == 0 and "another regless run" not in again.stderr, again.stderr
    _settled(lock)
    assert not [n for n in _names(conf) if demo.repo in n], _names(conf)


def test_a_restart_in_full_runs_no_buildah(demo):
    """Regression: every restart removed `tools@digest` from buildah's storage (a `buildah rmi` process),
    though only a run that builds app pulls it for app's FROM."""
    assert demo.build().json()["buildsStarted"] == 3
    started = len(harness.calls(demo.builds_log))
    res = demo.run("build", "--output", "json", env={**demo.env, "REGLESS_REPLAY": "0"})  # the run in full
    assert res.returncode == 0 and {a["outcome"] for a in res.json()["artifacts"]} == {"cached"}, res.stderr
    assert harness.calls(demo.builds_log)[started:] == []


def test_a_runs_images_leave_in_one_buildah_process_past_those_it_cannot_remove(tmp_path, monkeypatch):
    """The run's end removed its images one `buildah rmi` each (about 40 ms a process: a second for 20
    builds); one process for all of them removes as many, going on past a name it does not find and an
    image a container uses, as the loop did (failures are no error)."""
    from conftest import need_tools
    from reglessbuild import proc, storage

    need_tools("buildah")
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", harness.storage_conf(tmp_path / "s"))
    conf = Path(os.environ["CONTAINERS_STORAGE_CONF"])
    b = ["buildah", "--storage-driver", "vfs"]
    ctr = subprocess.run([*b, "from", "scratch"], check=True, capture_output=True, text=True).stdout.strip()
    for name in ("one", "used", "two"):
        subprocess.run([*b, "commit", "-q", ctr, f"localhost/{name}:t"], check=True, capture_output=True)
    subprocess.run([*b, "tag", "localhost/one:t", "localhost/one:alias"], check=True)
    subprocess.run([*b, "from", "localhost/used:t"], check=True, capture_output=True)  # a container uses it
    calls: list[list[str]] = []
    real = proc.run
    monkeypatch.setattr(proc, "run", lambda argv, **kw: (calls.append(list(argv)), real(argv, **kw))[1])
    storage.remove(["localhost/one:t", "localhost/used:t", "localhost/nosuch:t", "localhost/two:t",
                    "localhost/one:alias"], "vfs")
    assert [c[3] for c in calls] == ["rmi"], calls
    assert _names(conf) == ["localhost/used:t"]
    storage.remove([], "vfs")
    assert len(calls) == 1  # nothing to remove: no process


def _gate(folder: Path, demo) -> tuple[dict[str, str], Path]:
    """regless's own storage, with a `buildah` first on PATH whose `rmi` waits for the file `go` (then runs
    the demo's counting shim, so the real buildah): a run's removal held open for as long as the test
    needs. The environment and the `go` file."""
    folder.mkdir()
    go = folder / "go"
    shim = folder / "buildah"
    shim.write_text(f'#!/bin/sh\nif [ "$3" = rmi ]; then\n  while [ ! -e "{go}" ]; do sleep 0.02; done\nfi\n'
                    f'exec "{demo.builds_log.parent / "buildah"}" "$@"\n')
    shim.chmod(0o755)
    env = _own(demo, folder.parent)
    env["PATH"] = f"{folder}:{env['PATH']}"
    return env, go


def _waits_on(lock: Path, pid: int, deadline: float = 300.0) -> None:
    """Until process `pid` waits for the flock on `lock` (a blocked waiter in /proc/locks: "->"), or fail."""
    ino = f":{lock.stat().st_ino} "
    end = time.monotonic() + deadline
    while not any("->" in ln and ino in ln and f" {pid} " in ln for ln in Path("/proc/locks").read_text().splitlines()):
        assert time.monotonic() < end, f"process {pid} never waited for {lock}"
        time.sleep(0.02)


def _held(lock: Path) -> bool:
    """Whether another holds `lock` exclusively now."""
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _lines(log: Path) -> list[str]:
    return log.read_text().splitlines()


def _rmi_ended_at(log: Path) -> int | None:
    """The index in the counting shim's log of the line saying the (one) `buildah rmi` ended, or None."""
    lines = _lines(log)
    pid = next(ln.split()[0] for ln in lines if not ln.startswith("end ") and ln.split()[3:4] == ["rmi"])
    return next((i for i, ln in enumerate(lines) if ln.startswith(f"end {pid} ")), None)


def _first_build(demo, env: dict[str, str]) -> None:
    """A build of the demo in `env` (regless's own storage, its removal held at a gate), which succeeds."""
    first = subprocess.run([REGLESS, "build", "--default-repo", demo.repo], cwd=demo.path, env=env,
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]


def test_on_reglesss_own_storage_the_removal_outlives_the_run_and_the_next_run_waits_for_it(demo, tmp_path):
    """On regless's own storage the run's `buildah rmi` is left running after the run (the run does not wait
    for it), holding the storage's lock exclusively until it ends: the images are gone once the lock is
    free, and a run started at once waits for the removal before its first buildah process, so no image
    leaves from under its builds. The old code waited for the removal: this run never ended with it held."""
    env, go = _gate(tmp_path / "gate", demo)
    lock = tmp_path / "data" / "regless" / "containers" / "regless.lock"
    conf = lock.parent / "storage-vfs.conf"
    try:
        _first_build(demo, env)
        assert _held(lock)  # by the removal, still waiting at the gate
        assert {n.split("/")[-1].split(":")[0] for n in _names(conf) if demo.repo in n} == {"web", "tools", "app"}
        before = len(_lines(demo.builds_log))  # the rmi is not there yet: the gate is before the counting shim
        second = subprocess.Popen([REGLESS, "build", "--output", "json", "--no-cache", "--default-repo", demo.repo],
                                  cwd=demo.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _waits_on(lock, second.pid)
            assert len(_lines(demo.builds_log)) == before  # no buildah process of the second run while it waits
        finally:
            go.touch()
            out, err = second.communicate(timeout=300)
        assert second.returncode == 0, err[-3000:]
        assert {a["outcome"] for a in json.loads(out)["artifacts"]} == {"built"}
        lines = _lines(demo.builds_log)
        first_build = next(i for i, ln in enumerate(lines) if i >= before and ln.split()[3:4] == ["build"])
        assert (_rmi_ended_at(demo.builds_log) or len(lines)) < first_build, lines[before:]
        _settled(lock)
        assert not [n for n in _names(conf) if demo.repo in n], _names(conf)
    finally:
        go.touch()
        if lock.exists():
            _settled(lock)


def test_a_run_that_builds_nothing_does_not_wait_for_an_earlier_runs_removal(demo, tmp_path):
    """A run takes its claim when it first starts buildah (storage.Claiming), not at its start: a restart
    right after a build (run in full: a run that built is not kept for a replay) builds nothing, so it never
    waits for the removal that build left running (which, after many images, outlives the build). With the
    claim taken at the start, this restart waited for the gate and never ended."""
    env, go = _gate(tmp_path / "gate", demo)
    lock = tmp_path / "data" / "regless" / "containers" / "regless.lock"
    try:
        _first_build(demo, env)
        restart = subprocess.run([REGLESS, "build", "--output", "json", "--default-repo", demo.repo], cwd=demo.path,
                                 env=env, capture_output=True, text=True, timeout=300)
        assert restart.returncode == 0, restart.stderr[-3000:]
        assert {a["outcome"] for a in json.loads(restart.stdout)["artifacts"]} == {"cached"}
        assert _held(lock)  # the first run's removal, still at the gate
    finally:
        go.touch()
        if lock.exists():
            _settled(lock)


def test_prune_of_the_builder_storage_waits_for_a_removal_under_way(demo, tmp_path):
    """`cache prune --builder-storage` empties regless's own storage only once its lock is free: a removal
    an earlier run left running (or a run building) ends first, and the wait is said."""
    env, go = _gate(tmp_path / "gate", demo)
    lock = tmp_path / "data" / "regless" / "containers" / "regless.lock"
    try:
        _first_build(demo, env)
        before = len(_lines(demo.builds_log))
        prune = subprocess.Popen([REGLESS, "cache", "prune", "--builder-storage"], cwd=demo.path, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _waits_on(lock, prune.pid)
            assert len(_lines(demo.builds_log)) == before  # prune has listed nothing yet
        finally:
            go.touch()
            out, err = prune.communicate(timeout=300)
        assert prune.returncode == 0 and "emptied regless's buildah storage" in out, err
        assert "waiting for the regless run using buildah's storage" in err, err
        lines = _lines(demo.builds_log)
        listed = next(i for i, ln in enumerate(lines) if i >= before and "images --all" in ln)
        assert (_rmi_ended_at(demo.builds_log) or len(lines)) < listed, lines[before:]
        assert _names(lock.parent / "storage-vfs.conf") == []
    finally:
        go.touch()


def test_a_storage_the_user_chose_sees_its_images_removed_before_the_run_ends(demo):
    """Where the user chose the storage (CONTAINERS_STORAGE_CONF) the removal stays synchronous: a user who
    gives a storage or a cache folder per run may delete it right after the run. The `buildah rmi` has
    ended when the run has, and the claim (the cache folder's storage.lock) is free."""
    res = demo.run("build", env=demo.env)  # the session's storage: the user's choice
    assert res.returncode == 0, res.stderr
    assert _rmi_ended_at(demo.builds_log) is not None, _lines(demo.builds_log)
    assert not _held(demo.cache_dir / "storage.lock")


def test_a_detached_removal_starts_once_the_run_is_done_not_beside_its_records():
    """On regless's own storage the removal is left running after the run; it is started once
    pipeline.build is done (its inputs records pushed), not beside the records as a synchronous removal
    is (it would compete with them for the processors, and nothing in the run waits for it)."""
    from reglessbuild import buildcli
    from reglessbuild.report import ArtifactResult

    released: list[tuple[list[str], bool]] = []

    class Claim:
        def release(self, names, driver, *, detach=False):
            released.append((names, detach))
            return True

    class Builder:
        leftovers = ["localhost/regless-web:1"]

    project = types.SimpleNamespace(artifacts=(), builder=types.SimpleNamespace(
        buildah=types.SimpleNamespace(storage_driver="vfs")))
    results = [ArtifactResult(name="web", image="r/web", hash="h", outcome="built")]
    for detach in (True, False):
        later: list = []
        leave = buildcli._leave(Claim(), project, Builder(), lambda ev: None, detach, later)  # type: ignore[arg-type]
        leave(results)
        assert released == ([] if detach else [(["localhost/regless-web:1"], False)])
        assert len(later) == (1 if detach else 0)
        for start in later:
            start()
        assert released == [(["localhost/regless-web:1"], detach)]
        released.clear()


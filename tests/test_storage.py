"""buildah's images in a storage of regless's own per user, removed once pushed; no run shows another's names."""

from __future__ import annotations

import fcntl
import os
import subprocess
import uuid
from pathlib import Path

import harness


def _own(demo, tmp_path: Path) -> dict[str, str]:
    """The demo's environment without the test session's storage: regless's own, under XDG_DATA_HOME."""
    env = {k: v for k, v in demo.env.items() if k != "CONTAINERS_STORAGE_CONF"}
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    return env


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

"""A no-change restart replayed from the run before it (reglessbuild/replay.py), against the real registry,
buildah and skopeo: the same results when nothing changed, and a run in full whenever anything a kept run
read is not as it was — a file's content (even with its mtime and size kept), a file added or removed, the
config, the environment, the registry's image, the index."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

import harness
from conftest import Project
from reglessbuild import replay
from reglessbuild.hashing import statmemo
from reglessbuild.hashing.choose import native

QUIET = 2.1  # seconds: what a kept run's reads must be older than (replay.RACY_NS), and then some


def kept(demo: Project, *args: str) -> dict:
    """Build, let the files age past the racy margin, build again (the run that is kept); its JSON."""
    demo.build(*args)
    time.sleep(QUIET)
    res = demo.build(*args).json()
    assert res["replayed"] is False
    return res


def replayed(demo: Project, *args: str) -> dict:
    res = demo.build(*args).json()
    return res


def test_a_restart_is_replayed_with_the_same_results(demo: Project) -> None:
    full = kept(demo)
    tools_before = len(harness.calls(demo.builds_log))
    again = replayed(demo)
    assert again["replayed"] is True
    assert again["buildsStarted"] == 0 and again["registryCalls"] == full["registryCalls"]
    strip = ("seconds",)
    assert [{k: v for k, v in a.items() if k not in strip} for a in again["artifacts"]] == \
        [{k: v for k, v in a.items() if k not in strip} for a in full["artifacts"]]
    assert {a["outcome"] for a in again["artifacts"]} == {"cached"}
    assert (again["registryTool"], again["builder"], again["warnings"]) == \
        (full["registryTool"], full["builder"], full["warnings"])
    assert len(harness.calls(demo.builds_log)) == tools_before  # no buildah process
    # the text output too: one line per artifact, as the full run printed them
    text_full = demo.run("build", "--no-cache")  # a run in full, which builds: not kept
    assert text_full.returncode == 0
    time.sleep(QUIET)
    first = demo.run("build")
    second = demo.run("build")
    assert first.returncode == second.returncode == 0
    assert first.stdout.splitlines()[:-1] == second.stdout.splitlines()[:-1]
    assert second.stdout.splitlines()[-1].startswith("3 artifacts: 3 cached")


def test_a_file_changed_in_place_with_its_size_and_mtime_kept_is_not_replayed(demo: Project) -> None:
    kept(demo)
    victim = demo.path / "web" / "index.html"
    st = victim.stat()
    data = victim.read_bytes()
    victim.write_bytes(bytes([data[0] ^ 1]) + data[1:])  # same size
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))  # the mtime set back: only the ctime tells
    res = replayed(demo)
    assert res["replayed"] is False
    assert {a["name"]: a["outcome"] for a in res["artifacts"]} == {"web": "built", "tools": "cached", "app": "cached"}


@pytest.mark.parametrize("change", ["added", "removed", "renamed"])
def test_a_file_added_removed_or_renamed_is_not_replayed(demo: Project, change: str) -> None:
    kept(demo)
    static = demo.path / "web" / "static"
    if change == "added":
        (static / "new.css").write_text("p {}\n")
    elif change == "removed":
        (static / "site.css").unlink()
    else:
        (static / "site.css").rename(static / "site2.css")
    res = replayed(demo)
    assert res["replayed"] is False
    assert {a["name"]: a["outcome"] for a in res["artifacts"]}["web"] == "built"


def test_an_ignored_file_added_is_a_run_in_full_that_finds_the_same_images(demo: Project) -> None:
    """A folder's listing changed: the replay cannot tell whether the change matters, the run in full can."""
    kept(demo)
    (demo.path / "web" / "NOTES2.md").write_text("ignored? no: a new input\n")
    (demo.path / "web" / "NOTES2.md").unlink()
    res = replayed(demo)
    assert res["replayed"] is False
    assert {a["outcome"] for a in res["artifacts"]} == {"cached"}


def test_an_image_gone_from_the_registry_is_not_replayed(demo: Project) -> None:
    full = kept(demo)
    web = next(a for a in full["artifacts"] if a["name"] == "web")
    p = subprocess.run(["skopeo", "delete", "--tls-verify=false", f"docker://{web['image']}@{web['digest']}"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    res = replayed(demo)
    assert res["replayed"] is False
    assert {a["name"]: a["outcome"] for a in res["artifacts"]}["web"] in ("built", "retagged")


def test_the_config_the_environment_and_the_command_line_are_part_of_what_is_kept(demo: Project) -> None:
    kept(demo)
    assert replayed(demo)["replayed"] is True
    env = {**demo.env, "SOME_VARIABLE": "1"}  # another environment: another kept run
    res = demo.run("build", "--output", "json", env=env)
    assert res.returncode == 0 and res.json()["replayed"] is False
    res = demo.run("build", "--output", "json", "web")  # another command line
    assert res.returncode == 0 and res.json()["replayed"] is False
    cfg = demo.path / "regless.yaml"
    cfg.write_text(cfg.read_text() + "# a comment\n")
    assert replayed(demo)["replayed"] is False


def test_an_index_entry_the_run_read_removed_is_not_replayed(demo: Project) -> None:
    full = kept(demo)
    assert replayed(demo)["replayed"] is True
    web = next(a for a in full["artifacts"] if a["name"] == "web")
    res = demo.run("cache", "rm", web["hash"])
    assert res.returncode == 0, res.stderr
    again = replayed(demo)
    assert again["replayed"] is False and {a["outcome"] for a in again["artifacts"]} == {"cached"}


def test_replays_can_be_turned_off_and_never_come_with_v_or_no_cache(demo: Project) -> None:
    kept(demo)
    res = demo.run("build", "--output", "json", env={**demo.env, "REGLESS_REPLAY": "0"})
    assert res.returncode == 0 and res.json()["replayed"] is False
    assert demo.build("-v").json()["replayed"] is False
    assert replayed(demo)["replayed"] is True


def test_a_run_of_files_changed_just_before_it_is_not_kept(demo: Project) -> None:
    demo.build()
    time.sleep(QUIET)
    (demo.path / "web" / "static" / "site.css").write_text("body { color: red }\n")
    first = demo.build().json()  # builds web: not kept anyway
    second = demo.build().json()  # site.css changed within the racy margin of this run's start: not kept
    assert second["replayed"] is False and {a["outcome"] for a in second["artifacts"]} == {"cached"}
    assert first["replayed"] is False


def test_file_output_is_written_by_a_replay_as_by_the_run(demo: Project, tmp_path: Path) -> None:
    out = tmp_path / "builds.json"
    kept(demo, "--file-output", str(out))
    written = out.read_text()
    out.unlink()
    assert replayed(demo, "--file-output", str(out))["replayed"] is True
    assert out.read_text() == written


def test_the_racy_margin_is_the_stat_memos() -> None:
    assert replay.RACY_NS == int(statmemo.RACY_SECONDS * 1e9)


@pytest.mark.skipif(native is None, reason="the C part (reglessbuild/_native) is not built")
def test_the_c_and_python_looks_at_the_files_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").write_text("a")
    (tmp_path / "d").mkdir()
    os.symlink("a", tmp_path / "link")
    paths = [str(tmp_path / n) for n in ("a", "d", "link", "missing", "a/not-a-folder")]
    follow = bytes([1, 1, 0, 1, 1])
    from array import array

    def packed(keys: list[replay.StatKey]) -> bytes:
        out = array("q")
        for k in keys:
            out.extend(replay.MISSING if k is None else k)
        return out.tobytes()

    now = [replay._stat(p, bool(f)) for p, f in zip(paths, follow, strict=True)]
    blob = os.fsencode("".join(p + "\0" for p in paths))
    cases = [packed(now)]
    for i in range(len(paths)):  # each path in turn not as kept
        changed = list(now)
        changed[i] = (1, 2, 3, 4, 5, 6)
        cases.append(packed(changed))
    for want in cases:
        c = native.same_stats(blob, follow, want)
        monkeypatch.setattr("reglessbuild.hashing.choose.native", None)
        py = replay._first_changed(blob, follow, want)
        monkeypatch.undo()
        assert c == py
    assert native.same_stats(blob, follow, cases[0]) == -1
    assert [native.same_stats(blob, follow, w) for w in cases[1:]] == list(range(len(paths)))


def test_an_index_keeps_the_most_recent_kept_runs_only(tmp_path: Path) -> None:
    from reglessbuild.index import Index

    index = Index.open(tmp_path)
    db = index.dbs["replays"]
    for i in range(5):
        with index.env.begin(write=True) as txn:
            txn.put(b"k%d" % i, b"run", db=db)
            txn.put(b"when:k%d" % i, str(1000 + i).encode(), db=db)
            replay.keep_at_most(txn, db, 3)
    with index.env.begin() as txn:
        left = sorted(k for k, _ in txn.cursor(db=db))
    index.close()
    assert left == [b"k2", b"k3", b"k4", b"when:k2", b"when:k3", b"when:k4"]


def test_runs_kept_for_two_environments_replay_in_turn(demo: Project) -> None:
    """Regression: each kept run was tied to the index's whole state (LMDB's transaction id), so keeping
    one (a write) made every other kept run a run in full: two environments in turn never replayed."""
    other = {**demo.env, "REGLESS_TEST_OTHER": "1"}
    kept(demo)
    assert demo.run("build", "--output", "json", env=other).json()["replayed"] is False  # kept too
    for _ in range(2):
        assert replayed(demo)["replayed"] is True
        res = demo.run("build", "--output", "json", env=other)
        assert res.returncode == 0 and res.json()["replayed"] is True

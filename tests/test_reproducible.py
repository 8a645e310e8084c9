"""Reproducible builds and two jobs building the same hash (issue 21, point 3), on separate runners (own
HOME, cache dir and buildah storage) against the real registry."""

from __future__ import annotations

import json
import subprocess

from conftest import REGLESS
from runners import runner


def _no_timestamp(project) -> None:  # type: ignore[no-untyped-def]
    cfg = project.path / "regless.yaml"
    text = cfg.read_text().replace("layers: true}", "layers: true, timestamp: null}")
    assert "timestamp: null" in text
    cfg.write_text(text)


def _run(project, r, *args: str, repo: str | None = None) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    return subprocess.Popen([REGLESS, "build", "--output", "json", *args, "--default-repo", repo or project.repo],
                            cwd=project.path, env=r.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _digests(p: subprocess.Popen) -> dict[str, str]:
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err + out
    return {a["name"]: a["digest"] for a in json.loads(out)["artifacts"]}


def test_the_same_inputs_give_the_same_digest_on_two_runners(demo, tmp_path):
    """A FROM scratch image (web) and a busybox image with a RUN step (tools), built on two runners into two
    repositories, one after the other (seconds apart): the same digests."""
    one, two = runner(tmp_path, "one", demo.env), runner(tmp_path, "two", demo.env)
    first = _digests(_run(demo, one, "web", "tools", repo=demo.repo + "a"))
    second = _digests(_run(demo, two, "web", "tools", repo=demo.repo + "b"))
    assert len(one.built()) == 2 and len(two.built()) == 2  # each runner built both
    assert first == second
    assert demo.digest(f"{demo.repo}b/tools:{demo.run('hash', 'tools').stdout.strip()}") == first["tools"]


def test_without_a_fixed_timestamp_the_digest_changes(demo, tmp_path):
    """The control: with builder.buildah.timestamp: null the build's own time is in the image."""
    _no_timestamp(demo)
    one, two = runner(tmp_path, "one", demo.env), runner(tmp_path, "two", demo.env)
    first = _digests(_run(demo, one, "web", repo=demo.repo + "a"))
    second = _digests(_run(demo, two, "web", repo=demo.repo + "b"))
    assert first["web"] != second["web"]


def test_two_jobs_building_the_same_hash_at_once_both_succeed_with_the_registrys_digest(demo, tmp_path):
    one, two = runner(tmp_path, "one", demo.env), runner(tmp_path, "two", demo.env)
    procs = [_run(demo, r, "--no-cache", "web", "tools") for r in (one, two)]  # both build, both push
    got = [_digests(p) for p in procs]
    assert len(one.built()) == 2 and len(two.built()) == 2
    assert got[0] == got[1]
    for name in ("web", "tools"):
        h = demo.run("hash", name).stdout.strip()
        assert demo.digest(f"{demo.repo}/{name}:{h}") == got[0][name]
        for r in (one, two):  # each index recorded what the registry serves
            ls = subprocess.run([REGLESS, "cache", "show", h], env=r.env, capture_output=True, text=True, check=True)
            assert json.loads(ls.stdout)["digest"] == got[0][name]


def test_two_jobs_racing_without_reproducible_builds_both_succeed(demo, tmp_path):
    """Without a fixed timestamp the two pushes differ: both jobs still succeed, each reports a digest the
    registry serves, and the hash tag names one of them (the last push)."""
    _no_timestamp(demo)
    one, two = runner(tmp_path, "one", demo.env), runner(tmp_path, "two", demo.env)
    procs = [_run(demo, r, "--no-cache", "web") for r in (one, two)]
    got = [_digests(p)["web"] for p in procs]
    h = demo.run("hash", "web").stdout.strip()
    assert demo.digest(f"{demo.repo}/web:{h}") in got
    for d in got:
        assert demo.digest(f"{demo.repo}/web@{d}") == d


def test_bad_timestamp_or_reproducible_settings_are_exit_2(demo):
    cfg = demo.path / "regless.yaml"
    good = cfg.read_text()
    for setting, words in (("layers: true, timestamp: -1}", "builder.buildah.timestamp"),
                           ("layers: true, timestamp: soon}", "builder.buildah.timestamp")):
        cfg.write_text(good.replace("layers: true}", setting))
        res = demo.run("hash", "web")
        assert res.returncode == 2 and words in res.stderr and "Traceback" not in res.stderr, res.stderr
    cfg.write_text(good.replace("  kind: buildah\n", "  kind: buildah\n  kaniko: {reproducible: maybe}\n"))
    res = demo.run("hash", "web")
    assert res.returncode == 2 and "builder.kaniko.reproducible" in res.stderr, res.stderr
    cfg.write_text(good.replace("layers: true}", "layers: true, timestamp: 1700000000}"))
    assert demo.run("hash", "web").returncode == 0

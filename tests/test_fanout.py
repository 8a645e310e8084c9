"""Fan-out over CI jobs, end to end against the real registry and buildah: regless plan --jobs/--matrix,
regless build --share K/N with the registry as the meeting point, three runners at once."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter

import pytest

from conftest import REGLESS
from runners import labels, runner

REQUIRES = {"base": [], "web": [], "cli": [], "docs": [], "lib": ["base"], "api": ["base"], "app": ["lib"],
            "tool": ["web"], "job": ["api", "lib"], "svc": ["app"]}


@pytest.fixture
def fan(make_project):  # type: ignore[no-untyped-def]
    return make_project("fanout")


def test_plan_json_carries_waves_shares_and_matrices(fan):
    res = fan.run("plan", "--output", "json", "--jobs", "3", "--matrix", "github")
    assert res.returncode == 0, res.stderr
    doc = res.json()
    f = doc["fanout"]
    assert f["jobs"] == 3
    assert f["waves"] == [["base", "cli", "docs", "web"], ["api", "lib", "tool"], ["app", "job"], ["svc"]]
    assert sorted(n for s in f["shares"] for n in s["artifacts"]) == sorted(REQUIRES)
    assert [s["share"] for s in f["shares"]] == ["1/3", "2/3", "3/3"]
    assert all(f["costs"][n]["from"] == "input size" for n in REQUIRES)  # nothing built yet on this runner
    assert doc["matrix"] == {"include": [{"share": s["share"], "artifacts": " ".join(s["artifacts"])}
                                         for s in f["shares"]]}
    # the same split as a GitLab parallel:matrix, and alone on one line for a CI step's output
    gl = fan.run("plan", "--jobs", "3", "--matrix", "gitlab")
    assert gl.returncode == 0, gl.stderr
    assert json.loads(gl.stdout) == [{"SHARE": s["share"], "ARTIFACTS": " ".join(s["artifacts"])} for s in f["shares"]]
    assert len(gl.stdout.strip().splitlines()) == 1
    # with some of it cached, only the rest is fanned out
    assert fan.run("build", "base", "web").returncode == 0
    f2 = fan.run("plan", "--output", "json", "--jobs", "3").json()["fanout"]
    assert f2["waves"] == [["api", "cli", "docs", "lib", "tool"], ["app", "job"], ["svc"]]


@pytest.mark.parametrize("args, words", [
    (["plan", "--jobs", "0"], "--jobs"), (["plan", "--jobs", "x"], "--jobs"),
    (["plan", "--matrix", "jenkins"], "--matrix"), (["build", "--share", "0/3"], "--share"),
    (["build", "--share", "4/3"], "--share"), (["build", "--share", "two"], "--share"),
    (["build", "--share", "1/2", "--wait-timeout", "soon"], "duration"),
    (["build", "--plan", "plan.json"], "--share"), (["build", "--share", "1/2", "--plan", "missing.json"], "missing"),
])
def test_bad_fanout_input_is_exit_2_without_a_traceback(fan, args, words):
    res = fan.run(*args)
    assert res.returncode == 2, res.stderr
    assert words in res.stderr and "Traceback" not in res.stderr


def test_a_share_waits_for_another_shares_artifact_and_gives_up_with_exit_3(fan, tmp_path):
    plan = tmp_path / "plan.json"
    assert fan.run("plan", "--jobs", "3", "--save", str(plan)).returncode == 0
    shares = json.loads(plan.read_text())["fanout"]["shares"]
    share_of = {n: s["share"] for s in shares for n in s["artifacts"]}
    # a share with an artifact whose requirement another share builds
    k, waiter, needed = next((s["share"], n, r) for s in shares for n in s["artifacts"] for r in REQUIRES[n]
                             if share_of[r] != s["share"])
    wrong = fan.run("build", "--share", "1/2", "--plan", str(plan))
    assert wrong.returncode == 2 and "the plan has 3 shares" in wrong.stderr and "Traceback" not in wrong.stderr
    res = fan.run("build", "--output", "json", "--share", k, "--plan", str(plan), "--wait-timeout", "3s")
    assert res.returncode == 3, res.stderr
    assert f"waiting for {needed} (share {share_of[needed]})" in res.stderr
    out = {a["name"]: a for a in res.json()["artifacts"]}
    assert out[needed]["outcome"] == "failed"
    error = out[needed]["error"]
    assert error["code"] == "shareTimedOut"
    assert f"{needed} (" in error["message"] and f"share {share_of[needed]}" in error["message"]
    assert out[waiter]["outcome"] == "skipped"
    # nothing of another share was built here
    assert all(share_of.get(n) == k for n, a in out.items() if a["outcome"] == "built")
    # in text, the failure names the artifact, its share and the wait
    text = fan.run("build", "--share", k, "--plan", str(plan), "--wait-timeout", "2s")
    assert text.returncode == 3
    assert f"{needed} (" in text.stdout and f"built by share {share_of[needed]}, did not appear in the registry " \
        f"within 2 s" in text.stdout, text.stdout


def test_three_runners_at_once_build_each_artifact_once_against_its_requirements_digest(fan, tmp_path):
    """Started as CI starts jobs: not quite at once. The first runner has pushed an image before the other
    two start, so they see it cached: their split must still be the first one's."""
    runners = [runner(tmp_path / "runners", f"r{k}", fan.env) for k in (1, 2, 3)]
    files = [(tmp_path / f"r{k}.out", tmp_path / f"r{k}.err") for k in (1, 2, 3)]

    def start(k: int) -> subprocess.Popen:
        out, err = files[k - 1]
        return subprocess.Popen([REGLESS, "build", "--output", "json", "--share", f"{k}/3", "--default-repo",
                                 fan.repo, "--wait-timeout", "5m"], cwd=fan.path, env=runners[k - 1].env,
                                stdout=out.open("w"), stderr=err.open("w"), text=True)

    procs = [start(1)]
    deadline = time.monotonic() + 120
    while not runners[0].built() and procs[0].poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert runners[0].built(), "the first runner built nothing"
    procs += [start(2), start(3)]
    for p in procs:
        p.wait(timeout=600)
    outs = [(o.read_text(), e.read_text()) for o, e in files]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err + out
    # every artifact built exactly once over the three runners, none twice
    built = Counter(ref.rsplit("/", 1)[1].split(":")[0] for r in runners for ref in r.built())
    assert built == Counter({n: 1 for n in REQUIRES})
    # some share waited for another's artifact in the registry
    assert any("waiting for " in err for _, err in outs)
    # every artifact is in the registry, and every dependent was built against its requirement's digest
    reported = {}
    for out, _ in outs:
        for a in json.loads(out)["artifacts"]:
            assert reported.setdefault(a["name"], a["digest"]) == a["digest"]  # one digest everywhere
    hashes = {a["name"]: a["hash"] for out, _ in outs for a in json.loads(out)["artifacts"]}
    for name in REQUIRES:
        assert fan.digest(f"{fan.repo}/{name}:{hashes[name]}") == reported[name]
    for name, reqs in REQUIRES.items():
        if reqs:
            got = labels(f"{fan.repo}/{name}:{hashes[name]}")
            assert got["regless.test.from_image"] == f"{fan.repo}/{reqs[0]}:{hashes[reqs[0]]}@{reported[reqs[0]]}"
    # the deploy step: a last build without --share finds everything cached and writes the deploy file
    final = fan.run("build", "--output", "json", "--file-output", str(tmp_path / "builds.json"))
    assert final.returncode == 0 and set(final.outcomes().values()) == {"cached"}
    builds = json.loads((tmp_path / "builds.json").read_text())["builds"]
    assert {b["imageName"]: b["tag"].rsplit("@", 1)[1] for b in builds} == reported


def test_costs_come_from_the_index_else_the_registry_record_else_input_size(demo, tmp_path):
    built = {a["name"]: a for a in demo.build().json()["artifacts"]}
    (demo.path / "web" / "index.html").write_text("<p>changed</p>\n")
    (demo.path / "tools" / "greet.sh").write_text("#!/bin/sh\necho changed\n")
    here = demo.run("plan", "--output", "json", "--jobs", "2").json()["fanout"]["costs"]
    # the JSON gives the build's seconds to 3 places, the cost is the same seconds to 1 place: rounded twice,
    # 0.5495 is 0.55 and then 0.6, where the cost says 0.5; either rounding of the unrounded figure matches
    shown = built["web"]["seconds"]["build"]
    assert here["web"]["from"] == "index"
    assert here["web"]["seconds"] in {round(shown - 0.0005, 1), round(shown + 0.0005, 1)}, (here, shown)
    assert here["tools"]["from"] == "index"
    # a fresh runner: web's previous image is found through its tag (latest), with its inputs record
    fresh = runner(tmp_path, "fresh", demo.env)
    res = subprocess.run([REGLESS, "plan", "--output", "json", "--jobs", "2", "--default-repo", demo.repo],
                         cwd=demo.path, env=fresh.env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    there = json.loads(res.stdout)["fanout"]["costs"]
    assert there["web"] == {"seconds": round(built["web"]["seconds"]["build"], 1), "from": "registry record"}
    assert there["tools"]["from"] == "input size" and there["app"]["from"] == "input size"
    assert set(there) == {"web", "tools", "app"}

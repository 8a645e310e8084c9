"""`regless cache …` and the index under real use: a real registry, real builds, real processes."""

from __future__ import annotations

import json
import subprocess

from conftest import REGLESS
from reglessbuild.cache import parse_duration, prune_selection
from reglessbuild.index import Result

D = "sha256:" + "d" * 64


def _ls(project, cache=None) -> list[dict]:
    env = {**project.env, **({"REGLESS_CACHE_DIR": str(cache)} if cache else {})}
    res = project.run("cache", "ls", "--json", env=env)
    assert res.returncode == 0, res.stderr
    return res.json()["entries"]


def _rename_web(project) -> None:
    cfg = project.path / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("image: web ", "image: website "))


def test_ls_show_rm(demo):
    built = {a["hash"]: a for a in demo.build().json()["artifacts"]}
    rows = _ls(demo)
    assert {r["hash"] for r in rows} == set(built)
    for r in rows:
        a = built[r["hash"]]
        assert r["digest"] == a["digest"] and r["refs"] == [f"{a['image']}:{a['hash']}"] and r["buildSeconds"] > 0
    text = demo.run("cache", "ls")
    assert text.returncode == 0 and len(text.stdout.splitlines()) == 3
    h = rows[0]["hash"]
    show = demo.run("cache", "show", h[:8])
    assert show.returncode == 0 and json.loads(show.stdout)["hash"] == h
    assert demo.run("cache", "rm", h).stdout.strip() == f"removed {h}"
    assert len(_ls(demo)) == 2
    missing = demo.run("cache", "rm", h)
    assert missing.returncode == 2 and "no cache entry" in missing.stderr


def test_export_import_carries_the_index_to_another_runner(demo, tmp_path):
    demo.build()
    dump = tmp_path / "index.json"
    assert demo.run("cache", "export", str(dump)).returncode == 0
    doc = json.loads(dump.read_text())  # the same document as `cache ls --output json`, camelCase keys
    assert doc["command"] == "cache export" and len(doc["entries"]) == 3 and "builtAt" in doc["entries"][0]
    other = tmp_path / "runner2"
    env2 = {**demo.env, "REGLESS_CACHE_DIR": str(other)}
    res = demo.run("cache", "import", str(dump), env=env2)
    assert res.returncode == 0 and "imported 3 entries" in res.stdout
    assert sorted(map(json.dumps, _ls(demo, other))) == sorted(map(json.dumps, _ls(demo)))
    # the imported index knows web's digest under its old name: a rename is a retag, not a build
    _rename_web(demo)
    demo.env = env2
    out = demo.build().outcomes()
    assert out["website"] == "retagged" and demo.builds_started() == 3


def test_malformed_import_changes_nothing(demo, tmp_path):
    demo.build()
    before = _ls(demo)
    bad = tmp_path / "bad.jsonl"
    good = json.dumps({"v": 1, "hash": "e" * 32, "digest": D, "refs": ["r.example/a:" + "e" * 32],
                       "built_at": 1.0})
    bad.write_text(good + "\n{not json\n")
    res = demo.run("cache", "import", str(bad))
    assert res.returncode == 2 and f"{bad}:2:" in res.stderr and "nothing was imported" in res.stderr
    assert _ls(demo) == before
    bad.write_text(json.dumps({"v": 1, "hash": "short", "digest": D, "refs": ["a"], "built_at": 1}) + "\n")
    res = demo.run("cache", "import", str(bad))
    assert res.returncode == 2 and "bad hash" in res.stderr and _ls(demo) == before
    bad.write_text(json.dumps({"version": 1, "command": "cache export", "entries": [{"hash": "e" * 32}]}))
    res = demo.run("cache", "import", str(bad))
    assert res.returncode == 2 and f"{bad}: entry 1: missing key 'digest'" in res.stderr and _ls(demo) == before
    old = tmp_path / "old.jsonl"  # JSON lines, as regless wrote them before the one-document contract
    old.write_text(good + "\n")
    assert demo.run("cache", "import", str(old)).returncode == 0 and len(_ls(demo)) == len(before) + 1


def test_verify_finds_dead_entries_and_fix_drops_them(demo):
    arts = {a["name"]: a for a in demo.build().json()["artifacts"]}
    ok = demo.run("cache", "verify", "--insecure-registry", "127.0.0.1")
    assert ok.returncode == 0 and "3 alive, 0 dead" in ok.stdout
    web = arts["web"]
    subprocess.run(["skopeo", "delete", "--tls-verify=false", f"docker://{web['image']}@{web['digest']}"],
                   check=True, capture_output=True)
    bad = demo.run("cache", "verify")  # registry.insecure comes from regless.yaml here
    assert bad.returncode == 1 and "2 alive, 1 dead" in bad.stdout and f"dead  {web['hash']}" in bad.stdout
    fixed = demo.run("cache", "verify", "--fix")
    assert fixed.returncode == 0 and "(dropped)" in fixed.stdout
    assert web["hash"] not in {r["hash"] for r in _ls(demo)}


def test_cache_add_makes_a_registry_image_known(demo, tmp_path):
    web = next(a for a in demo.build().json()["artifacts"] if a["name"] == "web")
    fresh = {**demo.env, "REGLESS_CACHE_DIR": str(tmp_path / "fresh")}
    res = demo.run("cache", "add", f"{web['image']}:{web['hash']}", env=fresh)
    assert res.returncode == 0 and web["digest"] in res.stdout
    demo.env = fresh
    _rename_web(demo)
    assert demo.build().outcomes()["website"] == "retagged"


def test_cache_add_rejects_bad_references(demo):
    demo.build()
    not_hash = demo.run("cache", "add", f"{demo.repo}/web:latest")
    assert not_hash.returncode == 2 and "not IMAGE:HASH" in not_hash.stderr
    absent = demo.run("cache", "add", f"{demo.repo}/web:{'0' * 32}")
    assert absent.returncode == 2 and "is not in the registry" in absent.stderr


def test_prune_keep_per_image(demo):
    demo.build()
    greet = demo.path / "tools" / "greet.sh"
    greet.write_text(greet.read_text() + "echo v2\n")
    demo.build()
    assert len(_ls(demo)) == 5  # web 1, tools 2, app 2
    dry = demo.run("cache", "prune", "--keep", "1", "--dry-run")
    assert "would remove 2 entries" in dry.stdout and len(_ls(demo)) == 5
    assert "removed 2 entries" in demo.run("cache", "prune", "--keep", "1").stdout
    assert len(_ls(demo)) == 3
    assert demo.run("cache", "prune").returncode == 2
    assert demo.run("cache", "prune", "--older-than", "3 days").returncode == 2


def test_prune_selection_and_durations():
    now = 1_000_000.0
    items = [("a" * 32, Result(D, ("r.io/x:1",), "b", now - 10)), ("b" * 32, Result(D, ("r.io/x:2",), "b", now - 5)),
             ("c" * 32, Result(D, ("r.io/y:1",), "b", now - 100_000))]
    assert prune_selection(items, now=now, older_than=86400, keep=None) == ["c" * 32]
    assert prune_selection(items, now=now, older_than=None, keep=1) == ["a" * 32]
    assert parse_duration("1d12h") == 129600 and parse_duration("90s") == 90 and parse_duration("2w") == 1209600


def test_garbage_index_is_set_aside_and_build_goes_on(demo):
    demo.build()
    data = demo.cache_dir / "index" / "data.mdb"
    data.write_bytes(b"\0garbage" * 2048)
    res = demo.run("build", "--output", "json")
    assert res.returncode == 0
    assert "could not be read (not an LMDB file); moved it to" in res.stderr
    assert {a["outcome"] for a in res.json()["artifacts"]} == {"cached"}  # the registry is still the truth
    assert list(demo.cache_dir.glob("index.corrupt-*"))


def test_cache_dir_that_is_a_file_exits_2(demo, tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    res = demo.run("build", "--cache-dir", str(f))
    assert res.returncode == 2 and "is not a folder" in res.stderr and "Traceback" not in res.stderr


def test_two_builds_at_once_on_one_cache_and_registry(demo):
    procs = [subprocess.Popen([REGLESS, "build", "--output", "json", "-q", "--default-repo", demo.repo],
                              cwd=demo.path, env=demo.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, (out, err)  # -q: the JSON carries the failure
        assert {a["outcome"] for a in json.loads(out)["artifacts"]} <= {"built", "cached"}
    ok = demo.run("cache", "verify")
    assert ok.returncode == 0 and "3 alive, 0 dead" in ok.stdout
    again = demo.build()
    assert again.outcomes() == {"web": "cached", "tools": "cached", "app": "cached"}

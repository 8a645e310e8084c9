"""The walking skeleton's scenario, through the command line, with a real registry, buildah and skopeo."""

from __future__ import annotations

import json
import subprocess


def test_three_runs_build_then_cache_then_rebuild_only_what_changed(demo):
    first = demo.build()
    assert first.outcomes() == {"web": "built", "tools": "built", "app": "built"}
    assert demo.builds_started() == 3
    for a in first.json()["artifacts"]:
        # the registry serves IMAGE:HASH with exactly the digest regless reports
        assert demo.digest(f"{a['image']}:{a['hash']}") == a["digest"]

    second = demo.build()
    assert second.outcomes() == {"web": "cached", "tools": "cached", "app": "cached"}
    assert demo.builds_started() == 3, "a no-change run started a builder"
    assert second.json()["buildsStarted"] == 0
    assert {a["name"]: a["reference"] for a in second.json()["artifacts"]} == \
        {a["name"]: a["reference"] for a in first.json()["artifacts"]}

    greet = demo.path / "tools" / "greet.sh"
    greet.write_text(greet.read_text() + "echo changed\n")
    third = demo.build()
    assert third.outcomes() == {"web": "cached", "tools": "built", "app": "built"}
    assert demo.builds_started() == 5
    hashes = {a["name"]: a["hash"] for a in third.json()["artifacts"]}
    before = {a["name"]: a["hash"] for a in first.json()["artifacts"]}
    assert hashes["web"] == before["web"] and hashes["tools"] != before["tools"] and hashes["app"] != before["app"]


def test_empty_cache_dir_gets_hits_from_the_registry(demo, tmp_path):
    demo.build()
    demo.env["REGLESS_CACHE_DIR"] = str(tmp_path / "fresh-runner-cache")
    res = demo.build()
    assert res.outcomes() == {"web": "cached", "tools": "cached", "app": "cached"}
    assert demo.builds_started() == 3


def test_text_output_has_one_line_per_artifact_and_a_summary(demo):
    demo.build()
    res = demo.run("build", "-q")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert sorted(line.split()[1] for line in lines[:3]) == ["app", "tools", "web"]
    for line in lines[:3]:
        word, _name, ref = line.split()[:3]
        assert word == "cached" and ref.startswith(demo.repo) and "@sha256:" in ref
    assert lines[3].startswith("3 artifacts: 3 cached")
    assert "building" not in res.stderr and "retag" not in res.stderr  # nothing claimed that did not happen


def test_ignored_and_unreferenced_files_do_not_rebuild(demo):
    demo.build()
    (demo.path / "web" / "NOTES.md").write_text("edited notes\n")  # excluded by web/.dockerignore
    (demo.path / "app" / "unused.txt").write_text("no COPY reaches this\n")
    res = demo.build()
    assert res.outcomes() == {"web": "cached", "tools": "cached", "app": "cached"}


def test_renamed_image_is_retagged_not_rebuilt(demo):
    first = {a["name"]: a for a in demo.build().json()["artifacts"]}
    cfg = demo.path / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("image: web ", "image: website "))
    res = demo.build()
    assert res.outcomes() == {"website": "retagged", "tools": "cached", "app": "cached"}
    assert demo.builds_started() == 3
    site = next(a for a in res.json()["artifacts"] if a["name"] == "website")
    assert site["digest"] == first["web"]["digest"]
    assert demo.digest(site["reference"].split("@")[0]) == first["web"]["digest"]


def test_a_retag_checks_the_old_names_only_up_to_one_that_is_there(demo):
    """An index entry gathers a reference per name its image had; a retag needs one that still carries
    the digest, so each rename costs the same registry calls however many names came before."""
    demo.build()
    cfg = demo.path / "regless.yaml"
    calls = []
    for old, new in (("image: web ", "image: website "), ("image: website ", "image: site3 "),
                     ("image: site3 ", "image: site4 ")):
        cfg.write_text(cfg.read_text().replace(old, new))
        res = demo.build().json()
        assert {a["name"]: a["outcome"] for a in res["artifacts"]}[new.split()[1]] == "retagged"
        calls.append(res["registryCalls"])
    assert calls[0] == calls[1] == calls[2], calls


def test_stale_index_entry_is_dropped_and_rebuilt(demo):
    first = {a["name"]: a for a in demo.build().json()["artifacts"]}
    web = first["web"]
    subprocess.run(["skopeo", "delete", "--tls-verify=false", f"docker://{web['image']}@{web['digest']}"],
                   check=True, capture_output=True)
    cfg = demo.path / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("image: web ", "image: website "))
    res = demo.build()
    site = next(a for a in res.json()["artifacts"] if a["name"] == "website")
    assert site["outcome"] == "built", "an index entry whose image is gone was trusted"
    assert site["reason"]["code"] == "staleEntry" and "stale" in site["reason"]["message"]


def test_extra_tags_and_skaffold_file_output(demo, tmp_path):
    out = tmp_path / "builds.json"
    res = demo.build("--file-output", str(out))
    web = next(a for a in res.json()["artifacts"] if a["name"] == "web")
    assert demo.digest(f"{web['image']}:latest") == web["digest"]
    builds = json.loads(out.read_text())["builds"]
    # imageName is the image as written in the config: `skaffold deploy -a` looks artifacts up by it
    assert [b["imageName"] for b in builds] == ["web", "tools", "app"]
    assert all(b["tag"].startswith(f"{demo.repo}/{b['imageName']}:") and "@sha256:" in b["tag"] for b in builds)


def test_plan_does_nothing_and_says_why(demo):
    res = demo.run("plan", "--output", "json")
    assert res.returncode == 0, res.stderr
    assert {a["name"]: a["outcome"] for a in res.json()["artifacts"]} == \
        {"web": "built", "tools": "built", "app": "built"}
    assert demo.builds_started() == 0
    demo.build()
    res = demo.run("plan")
    assert res.returncode == 0 and res.stdout.count("cached") == 3 and "found" in res.stdout


def test_hash_and_deps_commands(demo):
    h = demo.run("hash", "web")
    assert h.returncode == 0 and len(h.stdout.strip()) == 32
    deps = demo.run("deps", "web", "--json")
    paths = [f["path"] for f in deps.json()["files"]]
    assert paths == ["index.html", "static/site.css"]  # NOTES.md is ignored, Dockerfile is not COPYed

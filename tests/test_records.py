"""Inputs records in the registry: each pushed image's inputs beside it, and `regless explain` on a runner
with an empty cache naming exactly what changed since. Real registry, real buildah, with each registry
tool that can run here (skopeo; crane where it is on PATH)."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess

import pytest

from reglessbuild import records
from reglessbuild import retrying as retry
from reglessbuild.refs import parse
from reglessbuild.registry import Crane, Reliable, Skopeo


def _skopeo_copy(src: str, dst: str) -> None:
    subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
                    f"docker://{src}", f"docker://{dst}"], check=True)


@pytest.fixture(params=["skopeo", "crane"])
def tool(request):
    if request.param == "crane" and not shutil.which("crane"):
        pytest.skip("crane not on PATH")
    return request.param


def _project(demo, tool: str, base: str):
    """The demo with tags on every image (records are found through them on a fresh runner), a build arg,
    and tools FROM a base tag that the test moves later."""
    cfg = demo.path / "regless.yaml"
    text = cfg.read_text().replace("insecure: [127.0.0.1]", f"insecure: [127.0.0.1]\n  tool: {tool}")
    text = text.replace("      BASE: ${REGLESS_BASE_IMAGE}", f"      BASE: {base}\n      GREETING: hi")
    text = text.replace("  - image: tools             # FROM the busybox base, with a RUN step\n",
                        "  - image: tools\n    tags: [latest]\n")
    text = text.replace("  - image: app               # FROM tools: rebuilt whenever tools changes\n",
                        "  - image: app\n    tags: [latest]\n")
    cfg.write_text(text)


def test_explain_on_a_fresh_runner_names_exactly_what_changed(demo, registry, base_image, tool, tmp_path):
    moving = f"{demo.repo}/base:moving"
    _skopeo_copy(base_image.split("@")[0], moving)
    _project(demo, tool, moving)
    first = demo.build()
    assert set(first.outcomes().values()) == {"built"}
    # the changes: a file, a build arg, the base tag moved, and so the required artifact
    (demo.path / "web" / "index.html").write_text("<p>changed</p>\n")
    cfg = demo.path / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("GREETING: hi", "GREETING: hello"))
    web = next(a for a in first.json()["artifacts"] if a["name"] == "web")
    _skopeo_copy(web["reference"].split("@")[0], moving)  # any other image: explain does not build
    demo.env["REGLESS_CACHE_DIR"] = str(tmp_path / "fresh-runner")

    res = demo.run("explain", "web", "--output", "json")
    assert res.returncode == 0, res.stderr
    out = res.json()
    assert out["comparedWith"] == f"{demo.repo}/web@{web['digest']}"
    assert [(c["kind"], c["subject"]) for c in out["changes"]] == [("content", "index.html")]

    tools = demo.run("explain", "tools", "--output", "json").json()
    subjects = {c["subject"] for c in tools["changes"]}
    assert subjects == {"build arg GREETING", f"base image {moving}"}, tools["changes"]
    detail = next(c["detail"] for c in tools["changes"] if c["subject"] == "build arg GREETING")
    assert detail == "hi -> hello"

    app = demo.run("explain", "app").stdout
    assert "required artifact TOOLS_IMAGE changed" in app
    assert "build arg GREETING changed (hi -> hello)" in app  # one level deep: why tools changed
    assert "inputs record of" in app


def test_an_image_without_a_record_says_so(demo, base_image):
    res = demo.run("explain", "web", "--against", base_image.split("@")[0])
    assert res.returncode == 0, res.stderr
    assert f"web: no inputs record for {base_image.split('@')[0]}, so there is nothing to compare with" in res.stdout


def test_records_can_be_turned_off_and_a_retag_links_the_same_record(demo, registry):
    first = demo.build()
    web = next(a for a in first.json()["artifacts"] if a["name"] == "web")
    reg = Reliable(Skopeo(insecure=("127.0.0.1",)), retry.Policy(deadline=10))
    ref = parse(web["reference"])
    found = records.load(reg, ref, web["digest"])
    assert found is not None and found.record["hash"] == web["hash"] and found.record["artifact"] == "web"
    # a rename: the image is retagged into a new repository, and its record is linked there
    cfg = demo.path / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("image: web ", "image: website "))
    second = demo.build()
    assert "inputs record" not in second.stderr, second.stderr
    site = next(a for a in second.json()["artifacts"] if a["name"] == "website")
    assert site["outcome"] == "retagged"
    linked = records.load(reg, parse(site["reference"]), site["digest"])
    assert linked is not None and linked.record == found.record
    idx = json.loads(reg.manifest(parse(site["reference"]).bare().with_tag(records.referrers_tag(site["digest"]))))
    old = json.loads(reg.manifest(ref.bare().with_tag(records.referrers_tag(web["digest"]))))
    assert [m["digest"] for m in idx["manifests"]] == [m["digest"] for m in old["manifests"]]  # the same record
    # turned off: nothing is pushed beside a new image
    cfg.write_text(cfg.read_text().replace("insecure: [127.0.0.1]", "insecure: [127.0.0.1]\n  records: false"))
    (demo.path / "web" / "index.html").write_text("<p>off</p>\n")
    third = demo.build()
    new = next(a for a in third.json()["artifacts"] if a["name"] == "website")
    assert new["outcome"] == "built"
    assert reg.manifest(parse(new["reference"]).bare().with_tag(records.referrers_tag(new["digest"]))) is None


def test_a_malformed_or_oversized_record_is_refused():
    with pytest.raises(records.RecordError, match="not gzip"):
        records.decode(b"not gzip at all")
    with pytest.raises(records.RecordError, match="shape"):
        records.decode(gzip.compress(json.dumps({"hash": 1}).encode()))
    with pytest.raises(records.RecordError, match="over"):
        records.decode(b"\0" * (records.MAX_COMPRESSED + 1))
    bomb = gzip.compress(b" " * (records.MAX_JSON + 10))
    with pytest.raises(records.RecordError, match="decompressed"):
        records.decode(bomb)
    good = {"hash": "h", "files": {"a": ["file", False, "d"]}, "settings": {}}
    assert records.decode(records.encode(good)) == good


def test_a_40000_file_record_stays_under_2_mb():
    rec = {"hash": "0" * 32, "settings": {},
           "files": {f"src/pkg{i // 100:03d}/file{i:05d}.py": ["file", i % 7 == 0, f"{i * 2654435761 % 2**128:032x}"]
                     for i in range(40_000)}}
    assert len(records.encode(rec)) < 2_000_000


@pytest.mark.parametrize("kind", ["skopeo", "crane"])
def test_store_and_load_with_each_tool(registry, base_image, kind):
    if kind == "crane" and not shutil.which("crane"):
        pytest.skip("crane not on PATH")
    adapter = Skopeo(insecure=("127.0.0.1",)) if kind == "skopeo" else Crane(insecure=("127.0.0.1",))
    pushes: list[str] = []
    real_push = adapter.push_layout
    adapter.push_layout = lambda layout, ref, **kw: (pushes.append(str(ref)), real_push(layout, ref, **kw))[1]
    reg = Reliable(adapter, retry.Policy(deadline=10))
    src = parse(base_image)
    dst = parse(f"{registry.address}/records/{kind}:t")
    _skopeo_copy(base_image.split("@")[0], str(dst))
    rec = {"hash": f"h-{kind}", "files": {"a": ["file", False, "x"]}, "settings": {"buildArgs": {"A": "1"}}}
    first = records.store(reg, dst, src.digest, rec, artifact="a")
    assert first.startswith("sha256:")
    # crane pushes the referrers index with the record it names in one process; skopeo the record, then the index
    listing = f"{dst.bare()}:{records.referrers_tag(src.digest)}"
    assert pushes == ([listing] if kind == "crane" else [f"{dst.bare()}@{first}", listing])
    assert records.store(reg, dst, src.digest, rec, artifact="a") == ""  # listed already: not pushed again
    newer = {**rec, "hash": f"h2-{kind}"}
    records.store(reg, dst, src.digest, newer, artifact="a")
    found = records.load(reg, dst, src.digest)
    assert found is not None and found.record == newer
    listed = json.loads(reg.manifest(dst.bare().with_tag(records.referrers_tag(src.digest))))["manifests"]
    assert len(listed) == 2


def test_build_v_and_plan_say_why_each_build_happens_from_a_fresh_runner(demo, tmp_path):
    cfg = demo.path / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("  - image: tools             # FROM the busybox base, with a RUN step\n",
                                           "  - image: tools\n    tags: [latest]\n"))
    demo.build()
    (demo.path / "tools" / "greet.sh").write_text("#!/bin/sh\necho changed\n")
    (demo.path / "tools" / "extra.txt").write_text("new\n")
    demo.env["REGLESS_CACHE_DIR"] = str(tmp_path / "fresh-runner")
    plan = demo.run("plan", "--output", "json")
    rows = {x["name"]: x for x in plan.json()["artifacts"]}
    assert rows["tools"]["outcome"] == "built"
    assert rows["tools"]["why"] == ["file content changed: greet.sh"]  # extra.txt is no input of tools
    assert rows["web"]["why"] == []  # cached: no reasons to give
    text = demo.run("plan").stdout
    assert "because file content changed: greet.sh" in text
    built = demo.run("build", "-v", "tools")
    assert built.returncode == 0, built.stderr
    assert "because file content changed: greet.sh" in built.stdout


def test_a_broken_record_in_the_registry_is_passed_over_with_a_warning(demo, tmp_path):
    """A record under the referrers tag that says it is regless's but is not of its shape: explain warns,
    finds nothing to trust, and the cache decision is untouched."""
    first = demo.build()
    web = next(a for a in first.json()["artifacts"] if a["name"] == "web")
    reg = Reliable(Skopeo(insecure=("127.0.0.1",)), retry.Policy(deadline=10))
    ref = parse(web["reference"])
    subject = records.subject_of(reg.manifest(ref.bare().with_digest(web["digest"])), web["digest"])
    layout, desc, raw = records.write_record(tmp_path / "bad", {"hash": 5, "files": "all of them"}, subject,
                                             {"dev.regless.hash": "x", records.CREATED: "2999-01-01T00:00:00Z"})
    reg.push_layout(layout, ref.bare().with_digest(desc["digest"]))
    records._list(reg, ref, web["digest"], desc, raw,
                  reg.manifest(ref.bare().with_tag(records.referrers_tag(web["digest"]))), tmp_path / "idx")
    demo.env["REGLESS_CACHE_DIR"] = str(tmp_path / "fresh-runner")
    res = demo.run("explain", "web")
    assert res.returncode == 0, res.stderr
    assert "inputs record of" in res.stderr and "is ignored" in res.stderr
    assert "web is cached" in res.stdout


def test_a_build_pushes_its_records_without_a_tool_process_where_the_registry_is_plain(demo, tool, tmp_path):
    """The record and its referrers index go over regless's own HTTP client (registry/layoutpush.py) where
    the direct checks' conditions hold (the demo's loopback registry, anonymous), so a build starts no
    crane or skopeo process for them; with REGLESS_DIRECT_CHECKS=0 the tool pushes them, as before. Either
    way `explain` on a fresh runner reads the record."""
    import harness

    cfg = demo.path / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("insecure: [127.0.0.1]", f"insecure: [127.0.0.1]\n  tool: {tool}"))
    log = harness.counting_shim(tmp_path / "shim", tool)
    demo.env["PATH"] = f"{tmp_path / 'shim'}:{demo.env['PATH']}"

    def pushes() -> list[str]:  # the tool's pushes of a layout
        return [c for c in harness.calls(log) if (" push " if tool == "crane" else " oci:") in f" {c} "]

    for direct in ("1", "0"):
        demo.env["REGLESS_DIRECT_CHECKS"] = direct
        (demo.path / "web" / "index.html").write_text(f"<p>{direct}</p>\n")
        before = len(pushes())
        built = demo.build("web")
        web = next(a for a in built.json()["artifacts"] if a["name"] == "web")
        assert web["outcome"] == "built" and "inputs record" not in built.stderr, built.stderr
        pushed = len(pushes()) - before
        assert (pushed == 0) if direct == "1" else (pushed >= 1), harness.calls(log)
        demo.env["REGLESS_CACHE_DIR"] = str(tmp_path / f"fresh-{direct}")
        res = demo.run("explain", "web", "--against", f"{demo.repo}/web@{web['digest']}", "--output", "json")
        assert res.returncode == 0 and res.json()["comparedWith"] == f"{demo.repo}/web@{web['digest']}", res.stderr
        assert res.json()["changes"] == []

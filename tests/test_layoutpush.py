"""An inputs record pushed over HTTP in regless's own process (registry/layoutpush.py, through
registry/direct.py), against the real registry and the fault proxy: the registry holds the same bytes as
after the tool's push, no tool process is started where the registry's answers are plain, and anything
else is pushed by the tool as before."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from faultproxy import FaultProxy, Rule
from reglessbuild import records
from reglessbuild import retrying as retry
from reglessbuild.refs import ImageRef, parse
from reglessbuild.registry import Crane, Reliable, Skopeo, direct

RECORD = {"hash": "h-direct", "files": {"a": ["file", False, "x"], "b/c": ["file", True, "y"]},
          "settings": {"buildArgs": {"A": "1"}}}


def _tool(kind: str) -> Any:
    if kind == "crane" and not shutil.which("crane"):
        pytest.skip("crane not on PATH")
    return Skopeo(insecure=("127.0.0.1",)) if kind == "skopeo" else Crane(insecure=("127.0.0.1",))


def _counted(adapter: Any) -> list[str]:
    """The references the tool's push_layout is asked to push (each one tool process)."""
    pushes: list[str] = []
    real = adapter.push_layout
    adapter.push_layout = lambda layout, ref, **kw: (pushes.append(str(ref)), real(layout, ref, **kw))[1]
    return pushes


def _copy_of(base_image: str, registry: str, repo: str) -> ImageRef:
    dst = parse(f"{registry}/{repo}:t")
    subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
                    f"docker://{base_image.split('@')[0]}", f"docker://{dst}"], check=True)
    return dst


def _held(reg: Reliable, image: ImageRef, digest: str) -> dict[str, bytes]:
    """What the registry holds of the records of `image@digest`: the index, each manifest, each blob."""
    index = reg.manifest(image.bare().with_tag(records.referrers_tag(digest)))
    assert index is not None
    held = {"index": index}
    for entry in json.loads(index)["manifests"]:
        manifest = reg.manifest(image.bare().with_digest(entry["digest"]))
        assert manifest is not None
        held[entry["digest"]] = manifest
        for blob in [json.loads(manifest)["config"], *json.loads(manifest)["layers"]]:
            held[blob["digest"]] = subprocess.run(
                ["curl", "-sf", f"http://{image.registry}/v2/{image.repository}/blobs/{blob['digest']}"],
                check=True, capture_output=True).stdout
    return held


@pytest.fixture
def same_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """Records made the same second (their annotations carry the time), so two pushes can be compared."""
    monkeypatch.setattr(records, "time", types.SimpleNamespace(strftime=time.strftime, gmtime=lambda: time.gmtime(0)))


@pytest.mark.parametrize("kind", ["crane", "skopeo"])
def test_a_record_pushed_directly_is_what_the_tool_pushes(registry, base_image, tmp_path, kind, same_second):
    digest = parse(base_image).digest
    assert digest is not None
    tool_adapter, direct_adapter = _tool(kind), _tool(kind)
    by_tool, by_direct = _counted(tool_adapter), _counted(direct_adapter)
    d = direct.Direct(direct_adapter, insecure=("127.0.0.1",), env={"HOME": str(tmp_path)})
    plain, fast = Reliable(tool_adapter, retry.Policy(deadline=10)), Reliable(d, retry.Policy(deadline=10))
    a = _copy_of(base_image, registry.address, f"layoutpush/tool-{kind}")
    b = _copy_of(base_image, registry.address, f"layoutpush/direct-{kind}")
    for reg, image in ((plain, a), (fast, b)):
        assert records.store(reg, image, digest, RECORD, artifact="a").startswith("sha256:")
        assert records.store(reg, image, digest, {**RECORD, "hash": "h2"}, artifact="a").startswith("sha256:")
    assert by_direct == [] and d.fallbacks == 0  # no tool process for the two records and their listings
    assert len(by_tool) == (2 if kind == "crane" else 4)
    tools, directs = _held(plain, a, digest), _held(fast, b, digest)
    if kind == "skopeo":  # skopeo 1.9 rewrites the index it copies, dropping the descriptors' artifactType
        index = json.loads(directs["index"])
        for entry in index["manifests"]:
            assert entry.pop("artifactType") == records.ARTIFACT_TYPE
        assert json.loads(tools["index"]) == index
        del tools["index"], directs["index"]
    assert tools == directs  # byte for byte: the index (crane), the records' manifests, their blobs
    found = records.load(fast, b, digest)
    assert found is not None and found.record == {**RECORD, "hash": "h2"}


def test_a_record_staged_while_its_image_builds_leaves_its_manifest_and_listing_for_the_end(
        registry, base_image, tmp_path, same_second):
    """records.stage pushes the record's blobs ahead (the image still being built); store then sends no
    blob, and the registry holds byte for byte what a store without staging leaves. The build's seconds
    are an annotation of the record (known only at the end), and load gives them back."""
    digest = parse(base_image).digest
    assert digest is not None
    d = direct.Direct(_tool("skopeo"), insecure=("127.0.0.1",), env={"HOME": str(tmp_path)})
    sent: list[tuple[str, str]] = []
    real = d.client.send
    d.client.send = lambda method, reg, target, *a, **kw: (sent.append((method, target)),  # type: ignore[method-assign]
                                                           real(method, reg, target, *a, **kw))[1]
    reg = Reliable(d, retry.Policy(deadline=10))
    ahead = _copy_of(base_image, registry.address, "layoutpush/staged")
    plain = _copy_of(base_image, registry.address, "layoutpush/unstaged")
    staged = records.stage(reg, ahead, RECORD)
    assert [m for m, _ in sent] == ["HEAD", "POST", "PUT", "HEAD", "POST", "PUT"]  # the config and the layer
    at = len(sent)
    assert records.store(reg, ahead, digest, staged, artifact="a", build_seconds=12.34).startswith("sha256:")
    assert [x for x in sent[at:] if "/blobs/" in x[1]] == []  # no blob asked for or sent again
    assert records.store(reg, plain, digest, RECORD, artifact="a", build_seconds=12.34).startswith("sha256:")
    assert _held(reg, ahead, digest) == _held(reg, plain, digest)
    found = records.load(reg, ahead, digest)
    assert found is not None and found.record == {**RECORD, "buildSeconds": 12.3}
    old = {**RECORD, "hash": "h-old", "buildSeconds": 5.0}  # as records were stored before: in the layer
    records.store(reg, plain, digest, old, artifact="a")
    found = records.load(reg, plain, digest)
    assert found is not None and found.record == old


@pytest.fixture
def proxy(registry) -> Iterator[FaultProxy]:
    with FaultProxy(registry.address) as p:
        yield p


@pytest.mark.parametrize("fault", ["500", "401", "reset"])
def test_an_upload_it_does_not_plainly_finish_is_pushed_by_the_tool(proxy, base_image, tmp_path, fault):
    """A fault on the upload's start hands the whole push to the tool, which pushes it in full (a reset
    kept-alive connection is tried once more on a new one, as the checks do)."""
    digest = parse(base_image).digest
    assert digest is not None
    image = _copy_of(base_image, proxy.upstream, "layoutpush/fault")
    image = parse(str(image).replace(proxy.upstream, proxy.address))
    proxy.rules.append(Rule(r"^POST /v2/.*/blobs/uploads/", fault, times=1))
    adapter = _tool("skopeo")
    pushes = _counted(adapter)
    d = direct.Direct(adapter, insecure=("127.0.0.1",), env={"HOME": str(tmp_path)})
    reg = Reliable(d, retry.Policy(deadline=10))
    rec = {**RECORD, "hash": f"h-{fault}"}
    stored = records.store(reg, image, digest, rec, artifact="a")
    found = records.load(reg, image, digest)
    assert found is not None and found.record == rec
    listed = [m["digest"] for m in json.loads(reg.manifest(image.bare().with_tag(records.referrers_tag(digest))) or b"")
              ["manifests"]]
    assert stored in listed
    if fault == "reset":
        assert pushes == [] and d.fallbacks == 0
    else:  # the record by the tool; its listing, whose record is there by then, directly
        assert pushes == [f"{image.bare()}@{stored}"]
    assert [x[2] for x in proxy.log if x[0] == "POST"][0] == fault


def test_a_registry_not_answered_directly_gets_the_tools_push(base_image, tmp_path):
    """Without registry.insecure a plain-http registry's ping fails over https: every push is the tool's."""
    digest = parse(base_image).digest
    assert digest is not None
    image = parse(base_image.split("@")[0].replace("base/", "layoutpush-https/"))
    subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
                    f"docker://{base_image.split('@')[0]}", f"docker://{image}"], check=True)
    adapter = _tool("skopeo")
    pushes = _counted(adapter)
    d = direct.Direct(adapter, env={"HOME": str(tmp_path)})
    stored = records.store(Reliable(d, retry.Policy(deadline=10)), image, digest, RECORD, artifact="a")
    assert pushes == [f"{image.bare()}@{stored}", f"{image.bare()}:{records.referrers_tag(digest)}"]
    assert d.direct == 0


def test_a_layout_it_does_not_read_is_unhandled(tmp_path):
    from reglessbuild.manifesthttp import ManifestClient, Unhandled
    from reglessbuild.registry import layoutpush

    client = ManifestClient(tool="skopeo", env={"HOME": str(tmp_path)})
    (tmp_path / "index.json").write_text(json.dumps({"manifests": [{"digest": "sha256:" + "0" * 64}] * 2}))
    with pytest.raises(Unhandled, match="other than one entry"):
        layoutpush.push(client, tmp_path, "127.0.0.1:1", "r", "t")
    (tmp_path / "index.json").write_text(json.dumps({"manifests": [{"digest": "sha256:" + "0" * 64}]}))
    with pytest.raises(Unhandled, match="lacks"):
        layoutpush.push(client, tmp_path, "127.0.0.1:1", "r", "t")
    blobs = Path(tmp_path / "blobs" / "sha256")
    blobs.mkdir(parents=True)
    (blobs / ("0" * 64)).write_text("not its digest")
    with pytest.raises(Unhandled, match="does not match"):
        layoutpush.push(client, tmp_path, "127.0.0.1:1", "r", "t")
    with pytest.raises(Unhandled, match="pushing"):
        layoutpush.push(client, tmp_path, "127.0.0.1:1", "r", "sha256:" + "1" * 64)

"""Registry checks overlap hashing: an artifact's check starts once its hash is known, before the
artifacts after it are hashed (checks.py), and the outcomes are those of checks made after hashing."""

from __future__ import annotations

import threading
from pathlib import Path

from reglessbuild import config, pipeline, run
from reglessbuild.events import Event
from reglessbuild.index import Index
from reglessbuild.refs import ImageRef

DIGEST = "sha256:" + "ab" * 32


class RecordingRegistry:
    """A registry port double that serves every reference and says when each check started."""

    name = "recording"

    def __init__(self) -> None:
        self.calls = 0
        self.checked: list[str] = []
        self.first_check = threading.Event()

    def digest(self, ref: ImageRef) -> str | None:
        self.calls += 1
        self.checked.append(ref.repository.rsplit("/", 1)[-1])
        self.first_check.set()
        return DIGEST

    def copy(self, src: ImageRef, dst: ImageRef) -> str:  # pragma: no cover - nothing is retagged here
        raise AssertionError("no copy expected")


class NoBuilder:
    name = "none"
    multi_platform = True

    def build(self, *_: object) -> str:  # pragma: no cover - everything is cached
        raise AssertionError("no build expected")


def project(tmp_path: Path, n: int) -> config.Project:
    lines = ["apiVersion: regless/v1", "defaultRepo: 127.0.0.1:5000/t", "artifacts:"]
    for i in range(n):
        (tmp_path / f"a{i}").mkdir()
        (tmp_path / f"a{i}" / "Dockerfile").write_text("FROM scratch\nCOPY f /\n")
        (tmp_path / f"a{i}" / "f").write_text(f"file {i}\n")
        lines += [f"  - image: a{i}", f"    context: a{i}"]
    (tmp_path / "regless.yaml").write_text("\n".join(lines) + "\n")
    return config.load(tmp_path / "regless.yaml")


def test_a_check_starts_before_the_next_artifact_is_hashed(tmp_path):
    proj, reg = project(tmp_path, 3), RecordingRegistry()
    seen: list[tuple[str, str | None, bool]] = []

    def emit(e: Event) -> None:
        if e.kind == "hashed":
            if e.artifact == "a1":  # a0's check must be under way before a1's hash is done
                assert reg.first_check.wait(10), "a0's check had not started when a1 was hashed"
            seen.append((e.kind, e.artifact, reg.first_check.is_set()))

    index = Index.open(tmp_path / "cache")
    try:
        rep = pipeline.build(proj, index, reg, NoBuilder(), emit)  # type: ignore[arg-type]
    finally:
        index.close()
    assert [r.outcome for r in rep.results] == ["cached"] * 3
    assert sorted(reg.checked) == ["a0", "a1", "a2"] and reg.calls == 3  # one check each, none twice
    assert seen[0] == ("hashed", "a0", seen[0][2]) and seen[1][2] is True
    assert set(rep.phases) >= {"hash", "check", "decide", "act", "record"}


def test_no_check_with_no_cache(tmp_path):
    proj, reg = project(tmp_path, 2), RecordingRegistry()
    index = Index.open(tmp_path / "cache")
    try:
        f = run.facts(run.prepare(proj, run.closure(proj, None), index, reg, lambda e: None), index, reg,  # type: ignore[arg-type]
                      no_cache=True, concurrency=4)
    finally:
        index.close()
    assert reg.checked == [] and all(x.no_cache for x in f.values())

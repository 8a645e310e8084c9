"""Dockerfile analyses kept across runs (reglessbuild/parsememo.py): a kept analysis is the fresh one, a
changed byte is parsed again, and bad input fails as it does without the memo (exit 2, the same words)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import REGLESS
from reglessbuild import dockerfile, parsememo
from reglessbuild.errors import DockerfileError
from reglessbuild.index import Index
from reglessbuild.platforms import parse

DOCKERFILE = """\
ARG BASE=alpine:3.19
FROM --platform=$BUILDPLATFORM golang:1.22 AS build
ARG VERSION=1
COPY --exclude=*.md src/ /src/
RUN --mount=type=bind,from=busybox:1.36,target=/bb true
FROM ${BASE}
COPY --from=build /out /app
ADD https://example.com/a.tar.gz /a.tar.gz
ADD --checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000 https://example.com/b /b
COPY conf/ /etc/conf/
"""


def _analyze(path: Path, index: Index, **kw: object) -> dockerfile.Analysis:
    batch = parsememo.Batch(index)
    an = parsememo.analyze(path, batch, **kw)  # type: ignore[arg-type]
    batch.flush()
    return an


@pytest.fixture
def index(tmp_path: Path):  # type: ignore[no-untyped-def]
    idx = Index.open(tmp_path / "cache")
    yield idx
    idx.close()


def test_a_kept_analysis_is_the_fresh_one(tmp_path, index):
    df = tmp_path / "Dockerfile"
    df.write_text(DOCKERFILE)
    for kw in ({"build_args": {}, "target": None}, {"build_args": {"BASE": "debian:12"}, "target": "build"},
               {"build_args": {}, "target": None, "platform": parse("linux/arm64")}):
        fresh = dockerfile.analyze(df, **kw)  # type: ignore[arg-type]
        first = _analyze(df, index, **kw)
        key = parsememo.key(DOCKERFILE, kw["build_args"], kw["target"], kw.get("platform"))  # type: ignore[arg-type]
        assert key is not None and index.parse_get(key) is not None  # kept
        assert _analyze(df, index, **kw) == first == fresh  # the kept one, decoded, is the fresh one
        assert fresh.sources and fresh.bases  # the example exercises what the record holds
    assert dockerfile.analyze(df, build_args={"BASE": "debian:12"}, target=None).bases != \
        dockerfile.analyze(df, build_args={}, target=None).bases  # the build args are part of the key


def test_one_changed_byte_is_parsed_again(tmp_path, index):
    df = tmp_path / "Dockerfile"
    df.write_text(DOCKERFILE)
    before = _analyze(df, index, build_args={}, target=None)
    df.write_text(DOCKERFILE.replace("COPY conf/", "COPY conb/"))
    after = _analyze(df, index, build_args={}, target=None)
    assert after == dockerfile.analyze(df, build_args={}, target=None) != before
    assert "conb" in {s.pattern for s in after.sources}


def test_a_bad_dockerfile_fails_as_without_the_memo(tmp_path, index):
    df = tmp_path / "Dockerfile"
    df.write_text(DOCKERFILE)
    _analyze(df, index, build_args={}, target=None)
    df.write_text(DOCKERFILE.replace("COPY conf/", "COPY ../conf/"))  # outside the context
    with pytest.raises(DockerfileError) as fresh:
        dockerfile.analyze(df, build_args={}, target=None)
    for _ in range(2):
        with pytest.raises(DockerfileError) as kept:
            _analyze(df, index, build_args={}, target=None)
        assert str(kept.value) == str(fresh.value) and kept.value.line == fresh.value.line


def test_an_unreadable_record_is_a_miss(tmp_path, index):
    df = tmp_path / "Dockerfile"
    df.write_text(DOCKERFILE)
    key = parsememo.key(DOCKERFILE, {}, None, None)
    assert key is not None
    index.parses_put({key: b"not json"})
    assert _analyze(df, index, build_args={}, target=None) == dockerfile.analyze(df, build_args={}, target=None)
    assert parsememo.decode(index.parse_get(key) or b"") is not None  # replaced by a good record


def _deps(project: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REGLESS_CACHE_DIR": str(cache), "NO_COLOR": "1"}
    return subprocess.run([REGLESS, "deps", "app", "--offline", "--json"], cwd=project, capture_output=True,
                          text=True, env=env, timeout=120)


def test_the_cli_reparses_a_changed_dockerfile_and_a_bad_one_exits_2_as_before(tmp_path):
    project = tmp_path / "p"
    (project / "app" / "one").mkdir(parents=True)
    (project / "app" / "two").mkdir()
    (project / "app" / "one" / "a.txt").write_text("a")
    (project / "app" / "two" / "b.txt").write_text("b")
    (project / "regless.yaml").write_text(
        "apiVersion: regless/v1\ndefaultRepo: 127.0.0.1:1/x\nartifacts:\n  - image: app\n    context: app\n")
    df = project / "app" / "Dockerfile"
    df.write_text("FROM scratch\nCOPY one/ /x/\n")
    cache = tmp_path / "cache"
    for _ in range(2):  # the second run reads the kept analysis
        p = _deps(project, cache)
        assert p.returncode == 0, p.stderr
        assert "one/a.txt" in p.stdout and "two/b.txt" not in p.stdout
    df.write_text("FROM scratch\nCOPY two/ /x/\n")  # one byte
    p = _deps(project, cache)
    assert p.returncode == 0, p.stderr
    assert "two/b.txt" in p.stdout and "one/a.txt" not in p.stdout
    json.loads(p.stdout)
    df.write_text("FROM scratch\nCOPY ../two/ /x/\n")
    bad = [_deps(project, cache), _deps(project, cache), _deps(project, tmp_path / "fresh-cache")]
    assert [b.returncode for b in bad] == [2, 2, 2]
    assert bad[0].stderr == bad[1].stderr == bad[2].stderr
    assert "outside the build context" in bad[0].stderr and "Traceback" not in bad[0].stderr


def test_code_that_cannot_be_looked_at_keeps_nothing(tmp_path, index, monkeypatch):
    df = tmp_path / "Dockerfile"
    df.write_text(DOCKERFILE)
    monkeypatch.setattr(parsememo, "_CODE", (str(tmp_path / "gone.py"),))  # e.g. a frozen install
    batch = parsememo.Batch(index)
    assert parsememo.analyze(df, batch, build_args={}, target=None) == dockerfile.analyze(df, build_args={},
                                                                                            target=None)
    assert batch.new == {}

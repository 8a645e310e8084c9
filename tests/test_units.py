"""Unit tests of refs, config, dockerfile analysis and the workspace hash (no registry, no builder)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reglessbuild import config, dockerfile, refs
from reglessbuild.errors import ConfigError, DockerfileError
from reglessbuild.hashing import ignore, inputs

# ---------------------------------------------------------------- refs

@pytest.mark.parametrize("text,want", [
    ("app", "docker.io/library/app"),
    ("team/app:1", "docker.io/team/app:1"),
    ("127.0.0.1:5000/team/app:abc", "127.0.0.1:5000/team/app:abc"),
    ("localhost/app@sha256:" + "a" * 64, "localhost/app@sha256:" + "a" * 64),
    ("r.example/a/b:t@sha256:" + "b" * 64, "r.example/a/b:t@sha256:" + "b" * 64),
])
def test_parse_and_format(text, want):
    assert str(refs.parse(text)) == want


def test_default_repo_prefixes_bare_names_only():
    assert str(refs.parse("app", default_repo="127.0.0.1:5000/team")) == "127.0.0.1:5000/team/app"
    assert str(refs.parse("other.io/x", default_repo="127.0.0.1:5000/team")) == "other.io/x"


@pytest.mark.parametrize("bad", ["", "App", "a//b", "a:b:c", "r.io/a@sha256:xyz", " a"])
def test_bad_refs(bad):
    with pytest.raises(refs.RefError):
        refs.parse(bad)


def test_registry_matches_host_or_host_port():
    assert refs.registry_matches("127.0.0.1:5000", ["127.0.0.1"])
    assert refs.registry_matches("127.0.0.1:5000", ["127.0.0.1:5000"])
    assert not refs.registry_matches("127.0.0.1:5000", ["127.0.0.1:5001"])


# ---------------------------------------------------------------- config

def _project(tmp_path: Path, text: str) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "regless.yaml").write_text(text)
    return tmp_path / "regless.yaml"


def test_config_loads_with_defaults(tmp_path):
    p = config.load(_project(tmp_path, "artifacts:\n  - image: app\n    buildArgs: {V: 1.10}\n"),
                    default_repo="127.0.0.1:5000/t")
    a = p.artifacts[0]
    assert str(a.ref) == "127.0.0.1:5000/t/app" and a.context == tmp_path and a.dockerfile == tmp_path / "Dockerfile"
    assert a.build_args == (("V", "1.10"),)  # as written, not YAML's float 1.1
    assert p.registry.tool == "auto" and p.builder.kind == "buildah" and p.builder.buildah.storage_driver == "vfs"


@pytest.mark.parametrize("text,needle,line", [
    ("artifacts:\n  - image: app\n  - image: app\n", "the image 'app' is also built at", 3),
    ("artifacts:\n  - image: app\n    tags: latest\n", "tags must be a list", 3),
    ("artifacts:\n  - image: app\n  - image: web\n    requires: [{image: app, alias: ''}]\n",
     "alias '' is not a valid build arg name", 4),
    ("registry: {concurrency: 0}\nartifacts:\n  - image: app\n", "positive integer", 1),
    ("builder: {kind: docker}\nartifacts:\n  - image: app\n", "buildah or kaniko", 1),
    ("artifacts:\n  - image: app\n    context: nope\n", "does not exist", 3),
    ("artifacts:\n  - image: App\n", "lowercase", 2),
    ("artifacts:\n  - image: app\n    buildArgs: {X: $UNSET_FOR_TEST}\n", "UNSET_FOR_TEST is not set", 3),
    ("apiVersion: v2\nartifacts:\n  - image: app\n", "not supported", 1),
    ("artifacts: [\n", "not valid YAML", None),
])
def test_config_errors_name_the_line(tmp_path, text, needle, line):
    os.environ.pop("UNSET_FOR_TEST", None)
    with pytest.raises(ConfigError) as exc:
        config.load(_project(tmp_path, text))
    assert needle in str(exc.value)
    if line:
        assert f"regless.yaml:{line}:" in str(exc.value)


def test_env_expansion():
    assert config.expand_env("a${X}b$X$$", {"X": "1"}) == "a1b1$"


# ---------------------------------------------------------------- dockerfile

DF = """\
# syntax=docker/dockerfile:1
ARG BASE=busybox
ARG DIR=src
FROM ${BASE} AS build
ARG DIR
ENV OUT=/out
COPY --chown=1:1 ${DIR}/a.txt "b c" /x/
COPY ["j son", "/y/"]
COPY <<EOF /etc/motd
hello
EOF
RUN --mount=type=bind,source=mounted,target=/m true
ADD https://example.com/f.tgz /f
FROM scratch AS unused
COPY never.txt /
FROM build
COPY --from=build /out /out
COPY --from=other.io/img:1 /x /x
COPY ./final/ /final/
"""


def test_analysis_of_the_target_stages(tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_text(DF)
    an = dockerfile.analyze(path, build_args={"DIR": "lib"}, target=None)
    assert [s.pattern for s in an.sources] == ["lib/a.txt", "b c", "j son", "mounted", "final"]
    assert [b.text for b in an.bases] == ["busybox", "other.io/img:1"]
    assert an.remote == ("https://example.com/f.tgz",)
    assert "never.txt" not in [s.pattern for s in an.sources]
    only_unused = dockerfile.analyze(path, build_args={}, target="unused")
    assert [s.pattern for s in only_unused.sources] == ["never.txt"] and only_unused.bases == ()


def test_source_outside_context_is_an_error(tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_text("FROM scratch\nCOPY ../secret /\n")
    with pytest.raises(DockerfileError) as exc:
        dockerfile.analyze(path, build_args={}, target=None)
    assert f"{path}:2:" in str(exc.value) and "outside the build context" in str(exc.value)


def test_unknown_target(tmp_path):
    path = tmp_path / "Dockerfile"
    path.write_text("FROM scratch AS a\n")
    with pytest.raises(DockerfileError, match="target stage 'b' not found"):
        dockerfile.analyze(path, build_args={}, target="b")


# ---------------------------------------------------------------- inputs and hash

def _tree(root: Path) -> None:
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.txt").write_text("a")
    (root / "src" / "run.sh").write_text("#!/bin/sh\n")
    (root / "src" / "run.sh").chmod(0o755)
    (root / "src" / "skip.log").write_text("noise")
    (root / "src" / "link").symlink_to("a.txt")
    (root / "other.txt").write_text("not copied")
    (root / ".dockerignore").write_text("*/*.log\n")
    (root / "Dockerfile").write_text("FROM scratch\nCOPY src/ /src/\n")


def _hash(root: Path, memo=None) -> tuple[str, list[inputs.InputFile]]:
    df = root / "Dockerfile"
    an = dockerfile.analyze(df, build_args={}, target=None)
    files, _, _ = inputs.collect(root, df, an, ignore.load(root, df), memo)
    s = inputs.Settings("buildah", df.read_bytes(), None, None, (), (), (), ())
    return inputs.workspace_hash(s, files), files


def test_inputs_follow_copy_and_dockerignore(tmp_path):
    _tree(tmp_path)
    _, files = _hash(tmp_path)
    assert [(f.path, f.kind, f.executable) for f in files] == [
        ("src/a.txt", "file", False), ("src/link", "symlink", False), ("src/run.sh", "file", True)]


def test_hash_is_path_and_mtime_independent_but_content_sensitive(tmp_path):
    _tree(tmp_path / "one")
    _tree(tmp_path / "two")
    os.utime(tmp_path / "two" / "src" / "a.txt", (1, 1))
    h1, h2 = _hash(tmp_path / "one")[0], _hash(tmp_path / "two")[0]
    assert h1 == h2
    (tmp_path / "two" / "other.txt").write_text("changed, but no COPY reads it")
    (tmp_path / "two" / "src" / "skip.log").write_text("changed, but ignored")
    assert _hash(tmp_path / "two")[0] == h1
    (tmp_path / "two" / "src" / "run.sh").chmod(0o644)
    h3 = _hash(tmp_path / "two")[0]
    assert h3 != h1
    (tmp_path / "two" / "src" / "a.txt").write_text("b")
    assert _hash(tmp_path / "two")[0] not in (h1, h3)


def test_missing_copy_source_names_the_line(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n\nCOPY nothere.txt /\n")
    with pytest.raises(DockerfileError) as exc:
        _hash(tmp_path)
    assert ":3:" in str(exc.value) and "nothere.txt" in str(exc.value)

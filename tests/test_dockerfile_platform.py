"""BuildKit's automatic platform ARGs in the Dockerfile analysis (issue 19, point 1).

TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT and BUILD* are in the global scope for the
target platform (default: the runner's): usable in FROM lines as they are, in a stage once it says
`ARG NAME`. The two lines from real projects that regless used to fail on are regression tests here,
through the real `regless` command on fixtures/platform-args.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REGLESS, ROOT
from reglessbuild import dockerfile, platforms
from reglessbuild.errors import DockerfileError
from reglessbuild.hashing import ignore, inputs

HOST = platforms.host()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "platform-args"
    shutil.copytree(ROOT / "fixtures" / "platform-args", path)
    return path


def regless(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REGLESS_CACHE_DIR": str(project.parent / "cache"), "NO_COLOR": "1"}
    return subprocess.run([REGLESS, *args], cwd=project, env=env, capture_output=True, text=True, timeout=120)


def deps(project: Path, artifact: str) -> list[str]:
    res = regless(project, "deps", artifact, "--json")
    assert res.returncode == 0, res.stderr
    return [f["path"] for f in json.loads(res.stdout)["files"]]


def hash_of(project: Path, artifact: str, *extra: str) -> str:
    res = regless(project, "hash", artifact, *extra)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def analyze(tmp_path: Path, text: str, *, platform: str | None = None, args: dict[str, str] | None = None,
            target: str | None = None) -> dockerfile.Analysis:
    df = tmp_path / "Dockerfile"
    df.write_text(text)
    return dockerfile.analyze(df, build_args=args or {}, target=target,
                              platform=platforms.parse(platform) if platform else None)


# ---------------------------------------------------------------- the two real lines (regression tests)

def test_traefik_copy_of_dist_targetplatform_hashes_the_runners_binary(project: Path) -> None:
    # was: COPY source 'dist/traefik' is not in the build context (TARGETPLATFORM expanded to nothing)
    if HOST not in (platforms.parse("linux/amd64"), platforms.parse("linux/arm64")):
        pytest.skip(f"the fixture has binaries for linux/amd64 and linux/arm64, not for this runner's {HOST}")
    assert deps(project, "traefik") == [f"dist/{HOST}/traefik"]
    before = hash_of(project, "traefik")
    (project / "traefik" / "dist" / str(HOST) / "traefik").write_text("a new build\n")
    after = hash_of(project, "traefik")
    assert after != before
    other = "linux/arm64" if HOST.arch == "amd64" else "linux/amd64"
    (project / "traefik" / "dist" / other / "traefik").write_text("another platform's new build\n")
    assert hash_of(project, "traefik") == after  # a file the runner's platform does not read


def test_buildx_from_binaries_targetos_is_the_stage_and_hashes_what_it_reads(project: Path) -> None:
    # was: FROM 'binaries-': invalid image reference. Had the expanded name been a valid image name,
    # the stage would have been taken for an outside image and cmd/ left out of the hash
    assert deps(project, "buildx") == ["cmd/buildx/main.go"]  # not windows/: that stage is not linux's
    before = hash_of(project, "buildx")
    (project / "buildx" / "cmd" / "buildx" / "main.go").write_text("package main // changed\n")
    assert hash_of(project, "buildx") != before


def test_the_platform_ARG_values_enter_the_hash_through_the_platform(project: Path) -> None:
    """Without a configured platform the runner's is used, and hashed as if it were configured."""
    implicit = hash_of(project, "traefik")
    cfg = project / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("    context: traefik\n",
                                           f"    context: traefik\n    platform: {HOST}\n"))
    assert hash_of(project, "traefik") == implicit


# ---------------------------------------------------------------- the semantics, on the analysis

def test_target_platform_picks_each_platforms_files(tmp_path: Path) -> None:
    text = "FROM scratch\nARG TARGETPLATFORM\nARG TARGETARCH\nCOPY dist/$TARGETPLATFORM/app /\nCOPY $TARGETARCH.conf /\n"
    assert [s.pattern for s in analyze(tmp_path, text, platform="linux/arm64").sources] == \
        ["dist/linux/arm64/app", "arm64.conf"]
    assert [s.pattern for s in analyze(tmp_path, text, platform="linux/arm/v7").sources] == \
        ["dist/linux/arm/v7/app", "arm.conf"]
    assert [s.pattern for s in analyze(tmp_path, text, platform="linux/x86_64").sources] == \
        ["dist/linux/amd64/app", "amd64.conf"]


def test_all_eight_args_have_buildkits_values(tmp_path: Path) -> None:
    names = platforms.AUTOMATIC_ARGS
    text = "FROM scratch\n" + "".join(f"ARG {n}\n" for n in names) + "COPY " + "_".join(f"${{{n}}}" for n in names) + " /\n"
    an = analyze(tmp_path, text, platform="linux/arm/v7")
    want = ["linux/arm/v7", "linux", "arm", "v7", str(HOST), "linux", HOST.arch, HOST.variant]
    assert [s.pattern for s in an.sources] == ["_".join(want)]


def test_in_a_stage_an_automatic_arg_needs_its_ARG_line_as_in_buildkit(tmp_path: Path) -> None:
    an = analyze(tmp_path, "FROM scratch\nCOPY dist/${TARGETARCH:-none}/app /\n", platform="linux/arm64")
    assert [s.pattern for s in an.sources] == ["dist/none/app"]


def test_a_build_arg_of_the_same_name_wins(tmp_path: Path) -> None:
    an = analyze(tmp_path, "FROM scratch\nARG TARGETARCH\nCOPY $TARGETARCH /\n", platform="linux/arm64",
                 args={"TARGETARCH": "custom"})
    assert [s.pattern for s in an.sources] == ["custom"]


def test_a_global_ARG_default_of_the_same_name_wins_too(tmp_path: Path) -> None:
    an = analyze(tmp_path, "ARG TARGETOS=plan9\nFROM scratch AS files-plan9\nCOPY p9 /\nFROM files-$TARGETOS\n",
                 platform="linux/amd64")
    assert [s.pattern for s in an.sources] == ["p9"]


def test_from_line_names_a_stage_per_platform_and_an_image_otherwise(tmp_path: Path) -> None:
    text = ("FROM scratch AS bin-amd64\nCOPY amd64.bin /\nFROM scratch AS bin-arm64\nCOPY arm64.bin /\n"
            "FROM bin-$TARGETARCH AS bin\nFROM reg.example/tools:$TARGETARCH AS tools\nFROM bin\n"
            "COPY --from=tools /t /t\n")
    for arch in ("amd64", "arm64"):
        an = analyze(tmp_path, text, platform=f"linux/{arch}")
        assert [s.pattern for s in an.sources] == [f"{arch}.bin"]
        assert [b.text for b in an.bases] == [f"reg.example/tools:{arch}"]


def test_copy_from_and_run_mount_from_expand_the_stages_args(tmp_path: Path) -> None:
    text = ("FROM scratch AS src-arm64\nCOPY a /\nFROM scratch AS src-amd64\nCOPY b /\n"
            "FROM scratch\nARG TARGETARCH\nCOPY --from=src-$TARGETARCH /x /x\n")
    assert [s.pattern for s in analyze(tmp_path, text, platform="linux/arm64").sources] == ["a"]
    assert [s.pattern for s in analyze(tmp_path, text, platform="linux/amd64").sources] == ["b"]


def test_from_platform_flag_is_expanded_and_kept_with_the_base(tmp_path: Path) -> None:
    an = analyze(tmp_path, "FROM --platform=$BUILDPLATFORM reg.example/go:1 AS build\n"
                           "FROM --platform=linux/aarch64 reg.example/arm:1 AS arm\nFROM reg.example/run:1\n"
                           "COPY --from=build /b /b\nCOPY --from=arm /a /a\n", platform="linux/arm64")
    assert [(b.text, b.platform) for b in an.bases] == [
        ("reg.example/go:1", str(HOST)), ("reg.example/arm:1", "linux/arm64"), ("reg.example/run:1", None)]


def test_a_bad_from_platform_is_a_dockerfile_error(tmp_path: Path) -> None:
    with pytest.raises(DockerfileError) as err:
        analyze(tmp_path, "FROM --platform=linux scratch\n")
    assert "Dockerfile:1" in str(err.value) and "os/arch" in str(err.value)


def test_platform_args_flag_says_whether_the_dockerfile_names_one(tmp_path: Path) -> None:
    assert analyze(tmp_path, "FROM scratch\nARG TARGETARCH\n").platform_args
    assert analyze(tmp_path, "FROM --platform=$BUILDPLATFORM scratch\n").platform_args
    assert not analyze(tmp_path, "FROM scratch\nARG TARGET_ARCH_X\nCOPY a /\n").platform_args


def test_files_of_the_other_platform_are_not_inputs(tmp_path: Path) -> None:
    for p in ("dist/linux/amd64/app", "dist/linux/arm64/app"):
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / p).write_text(p)
    an = analyze(tmp_path, "FROM scratch\nARG TARGETPLATFORM\nCOPY dist/$TARGETPLATFORM/ /\n", platform="linux/arm64")
    files, _, _ = inputs.collect(tmp_path, tmp_path / "Dockerfile", an,
                                 ignore.load(tmp_path, tmp_path / "Dockerfile"), None)
    assert [f.path for f in files] == ["dist/linux/arm64/app"]


# ---------------------------------------------------------------- platforms.parse

@pytest.mark.parametrize("text,want", [
    ("linux/amd64", "linux/amd64"), ("linux/x86_64", "linux/amd64"), ("Linux/AMD64", "linux/amd64"),
    ("linux/aarch64", "linux/arm64"), ("linux/arm64/v8", "linux/arm64"), ("linux/arm", "linux/arm/v7"),
    ("linux/arm/7", "linux/arm/v7"), ("linux/armhf", "linux/arm/v7"), ("linux/armel", "linux/arm/v6"),
    ("linux/i686", "linux/386"), ("linux/riscv64", "linux/riscv64"), ("linux/amd64/v3", "linux/amd64/v3"),
])
def test_platforms_are_normalized_like_containerd(text: str, want: str) -> None:
    assert str(platforms.parse(text)) == want


@pytest.mark.parametrize("text", ["linux", "", "linux/", "/amd64", "linux/amd64/v8/x", "linux/am d64"])
def test_a_platform_that_is_not_os_arch_is_an_input_error(text: str) -> None:
    with pytest.raises(platforms.PlatformError) as err:
        platforms.parse(text)
    assert err.value.exit_code == 2


def test_pick_finds_a_platforms_manifest_in_an_index() -> None:
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"digest": "sha256:" + "a" * 64, "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": "sha256:" + "b" * 64, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"digest": "sha256:" + "c" * 64, "platform": {"os": "unknown", "architecture": "unknown"}},
        {"digest": "sha256:" + "d" * 64, "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
    ]}).encode()
    assert platforms.pick(index, platforms.parse("linux/amd64")) == "sha256:" + "a" * 64
    assert platforms.pick(index, platforms.parse("linux/arm64")) == "sha256:" + "b" * 64
    assert platforms.pick(index, platforms.parse("linux/arm/v7")) == "sha256:" + "d" * 64
    with pytest.raises(platforms.PlatformError) as err:
        platforms.pick(index, platforms.parse("linux/s390x"))
    assert "linux/amd64, linux/arm64, linux/arm/v7" in (err.value.hint or "")
    assert platforms.pick(b'{"schemaVersion": 2, "config": {}, "layers": []}', platforms.parse("linux/amd64")) is None


# ---------------------------------------------------------------- what buildah is given

def test_automatic_args_that_from_lines_use_are_declared_for_buildah() -> None:
    text = "# syntax=docker/dockerfile:1\nARG BASE=x\nFROM --platform=$BUILDPLATFORM a AS b\nFROM bin-$TARGETOS\nRUN true\n"
    assert dockerfile.declare_automatic_args(text) == (
        "# syntax=docker/dockerfile:1\nARG BASE=x\nARG BUILDPLATFORM\nARG TARGETOS\n"
        "FROM --platform=$BUILDPLATFORM a AS b\nFROM bin-$TARGETOS\nRUN true\n")


def test_nothing_is_declared_twice_or_where_no_from_line_needs_it() -> None:
    assert dockerfile.declare_automatic_args("ARG TARGETOS\nFROM bin-$TARGETOS\n") is None
    assert dockerfile.declare_automatic_args("FROM scratch\nARG TARGETARCH\nCOPY $TARGETARCH /\n") is None
    assert dockerfile.declare_automatic_args("FROM scratch\n") is None


# ---------------------------------------------------------------- single-platform hashes as before

def test_single_platform_artifacts_keep_the_hash_they_had_before_issue_19(tmp_path: Path) -> None:
    """Pinned: these three hashes were computed by regless at 3b323f1, before platform ARGs and
    multi-platform images. A Dockerfile that names no platform ARG, with or without `platform`, must
    hash exactly as it did (a changed recipe would have to change RECIPE, and every hash, on purpose)."""
    root = tmp_path / "project"  # regless's index goes beside it, in tmp_path
    site = root / "site"
    (site / "static").mkdir(parents=True)
    (site / "index.html").write_text("<h1>hi</h1>\n")
    (site / "static" / "a.css").write_text("body {}\n")
    (site / "slow.txt").write_text("slow\n")
    (site / "fast.txt").write_text("fast\n")
    (site / "Dockerfile").write_text("FROM scratch AS files\nCOPY index.html /\nCOPY static /static\n"
                                     "FROM files\nARG MODE=fast\nENV M=$MODE\nCOPY ${MODE:-x}.txt* /\n")
    (root / "regless.yaml").write_text(
        "apiVersion: regless/v1\nartifacts:\n"
        "  - image: site\n    context: site\n    buildArgs: {MODE: slow}\n"
        "  - image: site-arm\n    context: site\n    platform: linux/arm64\n"
        "  - image: site-target\n    context: site\n    target: files\n    platform: linux/amd64\n")
    assert hash_of(root, "site") == "797569924d582ef61d15ffa738dbd779"
    assert hash_of(root, "site-arm") == "246651662761449ad1cfb2272033898f"
    assert hash_of(root, "site-target") == "44b98d1287d7a20e974b6a1029db4f77"

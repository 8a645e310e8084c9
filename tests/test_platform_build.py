"""Multi-platform images with the real tools (issue 19): buildah builds each platform (arm64's RUN step
under qemu-user-static through binfmt_misc), pushes one image index under IMAGE:HASH, and the
registry is asked what it holds: each platform's config architecture and its RUN step's `uname -m`.

bin/test sets up what this needs where it runs as root (bin/_setup.sh ensure_foreign): qemu-user-static,
binfmt_misc mounted with the qemu-aarch64 handler, and busybox from Debian's busybox-static:arm64. A
rootless runner needs an administrator to do the same once (the handler is the kernel's, for every
user); without it these tests skip, saying what is missing.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

import harness
from conftest import Project
from reglessbuild import platforms

ARCHES = {"linux/amd64": "x86_64", "linux/arm64": "aarch64"}


@pytest.fixture(scope="session")
def multiarch_base(registry: harness.LocalRegistry, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An index of busybox images for linux/amd64 and linux/arm64, and a linux/riscv64 image whose /bin/sh
    no handler runs (for the failure test). Returns REF (by tag)."""
    if platforms.host() != platforms.parse("linux/amd64"):
        pytest.skip(f"these tests build arm64 on amd64; this runner is {platforms.host()}")
    arm64 = harness.FOREIGN / "arm64" / "busybox"
    if not arm64.exists():
        pytest.skip(f"{arm64} missing: bin/test extracts it from Debian's busybox-static:arm64 (needs root)")
    if why := platforms.emulation(platforms.parse("linux/arm64")):
        pytest.skip(f"cannot run arm64 programs here ({why}): bin/test sets up qemu-user-static and binfmt_misc as root")
    top = tmp_path_factory.mktemp("multiarch-base")
    ref = harness.make_index_image(registry.address, "base/multi:1", {
        "linux/amd64": harness.busybox_root(top / "amd64" / "root"),
        "linux/arm64": harness.busybox_root(top / "arm64" / "root", str(arm64)),
        "linux/riscv64": harness.fake_elf_root(top / "riscv64" / "root"),
    })
    return ref.split("@")[0]


@pytest.fixture
def proj(make_project, multiarch_base: str) -> Project:  # type: ignore[no-untyped-def]
    p = make_project("platform-build")
    p.env["REGLESS_MULTIARCH_BASE"] = multiarch_base
    return p


def offline(make_project) -> Project:  # type: ignore[no-untyped-def]
    """The project for what is decided before any registry call (config, flags, builder choice)."""
    p = make_project("platform-build")
    p.env["REGLESS_MULTIARCH_BASE"] = "127.0.0.1:9/unused:1"
    return p


def raw(ref: str, *extra: str) -> bytes:
    return subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", *extra, f"docker://{ref}"],
                          check=True, capture_output=True).stdout


def children(ref: str) -> dict[str, str]:
    """platform -> manifest digest of the image index at `ref`."""
    doc = json.loads(raw(ref))
    assert doc["mediaType"] in ("application/vnd.oci.image.index.v1+json",
                                "application/vnd.docker.distribution.manifest.list.v2+json"), doc
    return {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"] for m in doc["manifests"]}


def file_in(ref: str, path: str, tmp: Path) -> str:
    """A file of the image at `ref`, from its top-most layer that holds it, as the registry serves it."""
    out = tmp / hashlib.sha256(ref.encode()).hexdigest()[:12]
    subprocess.run(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}", f"dir:{out}"],
                   check=True, capture_output=True)
    layers = [layer["digest"].split(":")[1] for layer in json.loads((out / "manifest.json").read_text())["layers"]]
    for digest in reversed(layers):
        with tarfile.open(out / digest, "r:*") as tar:
            for member in tar.getmembers():
                if member.name.lstrip("./") == path.lstrip("/"):
                    f = tar.extractfile(member)
                    assert f is not None
                    return f.read().decode()
    raise AssertionError(f"{path} is in no layer of {ref}")


def artifact(res, name: str) -> dict:  # type: ignore[no-untyped-def]
    return next(a for a in res.json()["artifacts"] if a["name"] == name)


def test_one_index_holds_each_platforms_image_with_its_run_output(proj: Project, tmp_path: Path) -> None:
    res = proj.build()
    multi = artifact(res, "multi")
    assert multi["outcome"] == "built"
    assert proj.builds_started() == 5  # multi and picked: one buildah build per platform; plain: one
    ref = f"{multi['image']}:{multi['hash']}"
    assert proj.digest(ref) == multi["digest"]  # the index, under IMAGE:HASH, with the digest regless reports
    kids = children(ref)
    assert sorted(kids) == sorted(ARCHES)
    for platform, machine in ARCHES.items():
        child = f"{multi['image']}@{kids[platform]}"
        config = json.loads(raw(child, "--config"))
        assert (config["os"], config["architecture"]) == tuple(platform.split("/"))
        assert file_in(child, "/uname", tmp_path).strip() == machine  # the RUN step ran as that platform
        arch = platform.split("/")[1]
        assert file_in(child, "/copied", tmp_path) == (proj.path / "multi" / f"only-{arch}.txt").read_text()
    assert artifact(res, "plain")["outcome"] == "built"
    assert "manifests" not in json.loads(raw(f"{artifact(res, 'plain')['image']}:{artifact(res, 'plain')['hash']}"))


def test_a_stage_picked_by_an_undeclared_automatic_arg_builds_with_buildah(proj: Project, tmp_path: Path) -> None:
    """`FROM bin-$TARGETARCH` with no ARG line, as BuildKit allows: regless declares it for buildah."""
    deps = proj.run("deps", "picked")
    assert deps.returncode == 0, deps.stderr
    assert [line.split()[-1] for line in deps.stdout.splitlines() if re.match(r"[0-9a-f]{32}  ", line)] == [
        "amd64.txt", "arm64.txt"]
    picked = artifact(proj.build("picked"), "picked")
    kids = children(f"{picked['image']}:{picked['hash']}")
    for platform in ARCHES:
        arch = platform.split("/")[1]
        assert file_in(f"{picked['image']}@{kids[platform]}", "/picked.txt", tmp_path) == f"picked for {arch}\n"
    assert "ARG TARGETARCH" not in (proj.path / "picked" / "Dockerfile").read_text()  # the user's file as it was


def push_index(ref: str, children: dict[str, str]) -> None:
    """An image index at `ref` of existing manifests (platform -> REF@DIGEST), as buildah makes one."""
    name = f"regless-test-{abs(hash(ref))}"
    storage = list(harness.STORAGE)
    subprocess.run(["buildah", *storage, "manifest", "create", name], check=True, capture_output=True)
    try:
        for platform, child in children.items():
            os_name, arch = platform.split("/")
            subprocess.run(["buildah", *storage, "manifest", "add", "--tls-verify=false", "--os", os_name,
                            "--arch", arch, name, f"docker://{child}"], check=True, capture_output=True)
        subprocess.run(["buildah", *storage, "manifest", "push", "-q", "--all", "--tls-verify=false", name,
                        f"docker://{ref}"], check=True, capture_output=True)
    finally:
        subprocess.run(["buildah", *storage, "manifest", "rm", name], capture_output=True)


def test_each_platforms_base_enters_the_hash_by_its_own_manifest(proj: Project, multiarch_base: str) -> None:
    """Not the index's digest: an index re-made of the same manifests keeps the hash; another arm64
    manifest under linux/arm64 changes it."""
    kids = children(multiarch_base)
    repo = multiarch_base.rsplit(":", 1)[0]
    base = f"{proj.repo}/base:1"  # this test's own tag: the session's base stays as it is
    push_index(base, {p: f"{repo}@{kids[p]}" for p in ("linux/amd64", "linux/arm64", "linux/riscv64")})
    proj.env["REGLESS_MULTIARCH_BASE"] = base

    def hashes() -> tuple[str, str]:
        multi, single = proj.run("hash", "multi"), proj.run("hash", "multi", "--platform", "linux/amd64")
        assert multi.returncode == 0 and single.returncode == 0, multi.stderr + single.stderr
        return multi.stdout, single.stdout

    first = hashes()
    push_index(base, {p: f"{repo}@{kids[p]}" for p in ("linux/amd64", "linux/arm64")})  # same manifests
    second = hashes()
    assert second[0] == first[0]
    assert second[1] != first[1]  # one platform: the tag's digest, as before issue 19
    push_index(base, {"linux/amd64": f"{repo}@{kids['linux/amd64']}", "linux/arm64": f"{repo}@{kids['linux/riscv64']}"})
    assert hashes()[0] != first[0]


def test_restart_is_cached_with_one_check_and_one_base_read(proj: Project) -> None:
    first = proj.build("multi")
    again = proj.build("multi")
    assert artifact(again, "multi")["outcome"] == "cached"
    assert artifact(again, "multi")["digest"] == artifact(first, "multi")["digest"]
    assert proj.builds_started() == 2, "a no-change run started a builder"
    # one read of the base's index (every platform's manifest digest in it) and one check of IMAGE:HASH
    assert again.json()["registryCalls"] == 2


def test_a_file_only_one_platform_reads_rebuilds_the_index(proj: Project, tmp_path: Path) -> None:
    first = artifact(proj.build("multi"), "multi")
    (proj.path / "multi" / "unread.txt").write_text("no platform reads this\n")
    assert artifact(proj.build("multi"), "multi")["outcome"] == "cached"
    (proj.path / "multi" / "only-arm64.txt").write_text("arm64's file, changed\n")
    second = artifact(proj.build("multi"), "multi")
    assert second["outcome"] == "built" and second["hash"] != first["hash"]
    kids = children(f"{second['image']}:{second['hash']}")
    assert file_in(f"{second['image']}@{kids['linux/arm64']}", "/copied", tmp_path) == "arm64's file, changed\n"
    assert file_in(f"{second['image']}@{kids['linux/amd64']}", "/copied", tmp_path) == \
        (proj.path / "multi" / "only-amd64.txt").read_text()


def test_a_rename_retags_the_whole_index_with_the_same_digest(proj: Project) -> None:
    first = artifact(proj.build("multi"), "multi")
    cfg = proj.path / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("  - image: multi\n", "  - image: multi-renamed\n"))
    res = proj.build("multi-renamed")
    renamed = artifact(res, "multi-renamed")
    assert renamed["outcome"] == "retagged"
    assert renamed["hash"] == first["hash"] and renamed["digest"] == first["digest"]
    assert proj.builds_started() == 2
    ref = f"{renamed['image']}:{renamed['hash']}"
    assert proj.digest(ref) == first["digest"]
    for platform, digest in children(ref).items():  # every platform's image came along
        assert json.loads(raw(f"{renamed['image']}@{digest}", "--config"))["architecture"] == platform.split("/")[1]


def test_a_foreign_run_step_without_an_emulator_fails_that_artifact_only(proj: Project) -> None:
    if platforms.emulation(platforms.parse("linux/riscv64")) is None:
        pytest.skip("a binfmt_misc handler for riscv64 is registered here: the test needs one that is not")
    (proj.path / "multi" / "only-riscv64.txt").write_text("read by linux/riscv64 only\n")
    res = proj.run("build", "--output", "json", "--platform", "linux/amd64,linux/riscv64", "multi", "plain")
    assert res.returncode == 1, res.stderr
    multi, plain = artifact(res, "multi"), artifact(res, "plain")
    assert multi["outcome"] == "failed"
    assert "qemu-user-static" in res.stderr + json.dumps(multi) and "binfmt_misc" in res.stderr + json.dumps(multi)
    assert multi["error"]["code"] == "buildFailed" and "linux/riscv64" in multi["error"]["message"]
    assert plain["outcome"] == "built"  # the other artifact went on
    assert proj.digest(f"{multi['image']}:{multi['hash']}") is None  # nothing pushed under IMAGE:HASH
    ls = proj.run("cache", "ls", "--json")
    assert ls.returncode == 0, ls.stderr
    assert multi["hash"] not in ls.stdout and plain["hash"] in ls.stdout  # and nothing recorded


def test_single_platform_from_the_command_line_hashes_as_in_the_config(proj: Project) -> None:
    by_flag = proj.run("hash", "multi", "--platform", "linux/arm64")
    cfg = proj.path / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("platforms: [linux/amd64, linux/arm64]", "platform: linux/arm64"))
    by_config = proj.run("hash", "multi")
    assert by_flag.returncode == 0 and by_config.returncode == 0, by_flag.stderr + by_config.stderr
    assert by_flag.stdout == by_config.stdout
    cfg.write_text(cfg.read_text().replace("platform: linux/arm64", "platforms: [linux/amd64, linux/arm64]"))
    both = proj.run("hash", "multi")
    assert both.returncode == 0 and both.stdout != by_config.stdout


@pytest.mark.parametrize("edit,words", [
    ("platforms: [linux/amd64, linux]", ["regless.yaml:", "platforms", "os/arch"]),
    ("platforms: []", ["regless.yaml:", "platforms is empty"]),
    ("platforms: [linux/amd64, linux/x86_64]", ["regless.yaml:", "linux/amd64 twice"]),
    ("platforms: [linux/amd64]\n    platform: linux/amd64", ["regless.yaml:", "both platform and platforms"]),
])
def test_bad_platforms_in_the_config_exit_2_naming_the_line(make_project, edit: str, words: list[str]) -> None:  # type: ignore[no-untyped-def]
    proj = offline(make_project)
    cfg = proj.path / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("platforms: [linux/amd64, linux/arm64]", edit))
    res = proj.run("hash", "multi")
    assert res.returncode == 2, res.stderr
    assert all(w in res.stderr for w in words), res.stderr
    assert "Traceback" not in res.stderr


def test_a_bad_platform_flag_exits_2(make_project) -> None:  # type: ignore[no-untyped-def]
    res = offline(make_project).run("hash", "plain", "--platform", "linux")
    assert res.returncode == 2 and "os/arch" in res.stderr and "Traceback" not in res.stderr


def test_kaniko_refuses_several_platforms_before_anything_runs(make_project) -> None:  # type: ignore[no-untyped-def]
    proj = offline(make_project)
    cfg = proj.path / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("  kind: buildah\n", "  kind: kaniko\n  kaniko: {executor: /bin/true}\n"))
    res = proj.run("build", "plain", "--platform", "linux/amd64,linux/arm64")
    assert res.returncode == 2, res.stderr
    assert "kaniko builds one platform per run" in res.stderr and "buildah" in res.stderr
    assert "Traceback" not in res.stderr

"""Session-wide real parts: one docker-registry process, one busybox base image and one buildah storage for
the whole run, or for each pytest-xdist worker (bin/test runs two; a worker is a session of its own).

Each test gets its own cache dir and its own repository prefix in the shared registry,
so tests never see each other's images.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# regless runs in the test's own process tree: no warm server (reglessbuild/warm) is started or used,
# but where a test asks for one (tests/test_warm.py)
os.environ["REGLESS_SERVER"] = "0"
REGLESS = str(Path(sys.executable).with_name("regless"))
TOOLS = ("docker-registry", "buildah", "skopeo")


def need_tools(*tools: str) -> None:
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not on PATH (bin/test installs them with apt-get)")


def pytest_sessionstart(session: pytest.Session) -> None:
    """pip builds reglessbuild._native (reglessbuild/csrc) as optional. bin/test installs gcc, python3-dev and
    libxxhash-dev first and sets REGLESS_REQUIRE_NATIVE=1: there a build that failed stops the run,
    rather than only making hashing slower and the C engine's tests skip."""
    from reglessbuild.hashing import choose

    if os.environ.get("REGLESS_REQUIRE_NATIVE") == "1" and choose.native is None:
        pytest.exit("reglessbuild._native was not built although bin/test installed gcc, python3-dev and "
                    "libxxhash-dev: see pip's output above", returncode=1)


@pytest.fixture(scope="session", autouse=True)
def own_image_storage() -> Iterator[None]:
    """buildah's images of this session in a folder of its own, removed at the end (unless the caller
    chose a storage with CONTAINERS_STORAGE_CONF)."""
    if os.environ.get("CONTAINERS_STORAGE_CONF"):
        yield
        return
    folder = Path(tempfile.mkdtemp(prefix="regless-test-storage-"))
    os.environ["CONTAINERS_STORAGE_CONF"] = harness.storage_conf(folder)
    try:
        yield
    finally:
        del os.environ["CONTAINERS_STORAGE_CONF"]
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.LocalRegistry]:
    need_tools(*TOOLS)
    with harness.LocalRegistry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture(scope="session")
def base_image(registry: harness.LocalRegistry) -> str:
    need_tools("buildah", "busybox")
    return harness.make_base_image(registry.address)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def outcomes(self) -> dict[str, str]:
        return {a["name"]: a["outcome"] for a in self.json()["artifacts"]}


@dataclass
class Project:
    """A copy of a fixture project with a private repository prefix, cache dir and buildah call log."""

    path: Path
    registry: str
    repo: str
    cache_dir: Path
    env: dict[str, str]
    builds_log: Path

    def run(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            default_repo: bool = True) -> Result:
        argv = [REGLESS, *args]
        if default_repo and args and args[0] in ("build", "plan", "explain", "hash", "deps"):
            argv += ["--default-repo", self.repo]
        p = subprocess.run(argv, cwd=cwd or self.path, env=env or self.env, capture_output=True, text=True,
                           timeout=600)
        return Result(p.returncode, p.stdout, p.stderr)

    def build(self, *args: str) -> Result:
        res = self.run("build", "--output", "json", *args)
        assert res.returncode == 0, res.stderr + res.stdout
        return res

    def builds_started(self) -> int:
        return sum(1 for c in harness.calls(self.builds_log) if c.split()[2:3] == ["build"])

    def builds_done(self) -> int:
        """`buildah build` calls that succeeded (a build that failed pulling its base is run again)."""
        return sum(1 for c, rc in harness.exits(self.builds_log) if c.split()[2:3] == ["build"] and rc == 0)

    def digest(self, ref: str) -> str | None:
        p = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                           capture_output=True)
        if p.returncode != 0:
            return None
        import hashlib

        return "sha256:" + hashlib.sha256(p.stdout).hexdigest()


@pytest.fixture
def make_project(tmp_path: Path, registry: harness.LocalRegistry, base_image: str):
    def make(fixture: str = "demo") -> Project:
        path = tmp_path / fixture
        shutil.copytree(ROOT / "fixtures" / fixture, path, symlinks=True)
        shim = tmp_path / "shim"
        log = harness.counting_shim(shim)
        cache = tmp_path / "cache"
        env = {**os.environ, "REGLESS_BASE_IMAGE": base_image, "REGLESS_CACHE_DIR": str(cache),
               "PATH": f"{shim}:{os.environ['PATH']}", "NO_COLOR": "1"}
        repo = f"{registry.address}/t{uuid.uuid4().hex[:10]}"
        return Project(path, registry.address, repo, cache, env, log)

    return make


@pytest.fixture
def demo(make_project) -> Project:  # type: ignore[no-untyped-def]
    return make_project("demo")

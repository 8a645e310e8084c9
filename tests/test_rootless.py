"""The walking skeleton's scenario as an unprivileged user with rootless buildah: regless never needs root.

The test creates the user (with subuid/subgid ranges) and runs regless under it with
`runuser` and a bare environment, as a CI image's job starts: no login session, so no
XDG_RUNTIME_DIR (regless gives its tools a runtime folder of the user's own). The user cannot
read root's Python, so regless runs on Debian's /usr/bin/python3 with a copy of its own package
and its runtime dependencies.
"""

from __future__ import annotations

import importlib
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

import harness
from conftest import ROOT

USER = "regless-rootless"
RUNTIME = ("reglessbuild", "lmdb", "yaml", "xxhash", "tenacity", "e2b_dockerfile_utils", "jsonpatch", "jsonpointer")


def _ensure_user() -> pwd.struct_passwd:
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", USER], check=True)
        pw = pwd.getpwnam(USER)
    for f, flag in (("/etc/subuid", "--add-subuids"), ("/etc/subgid", "--add-subgids")):
        if not any(line.startswith(f"{USER}:") for line in Path(f).read_text().splitlines()):
            subprocess.run(["usermod", flag, "300000-365535", USER], check=True)
    return pw


def _copy_runtime(lib: Path) -> None:
    for name in RUNTIME:
        mod = importlib.import_module(name)
        src = Path(mod.__file__)
        if src.name == "__init__.py":
            shutil.copytree(src.parent, lib / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, lib / src.name)


def test_demo_scenario_as_an_unprivileged_user(registry, base_image):
    if os.geteuid() != 0:
        pytest.skip(reason="needs root: useradd creates the unprivileged test user; bin/test runs as root in CI")
    for tool in ("runuser", "useradd", "newuidmap"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not on PATH")
    if not os.path.exists("/usr/bin/python3"):
        pytest.skip("/usr/bin/python3 not installed (Debian's python3)")
    pw = _ensure_user()
    top = Path(tempfile.mkdtemp(prefix="regless-rootless-"))
    try:
        top.chmod(0o755)
        lib = top / "lib"
        lib.mkdir()
        _copy_runtime(lib)
        project = top / "demo"
        shutil.copytree(ROOT / "fixtures" / "demo", project, symlinks=True)
        log = harness.counting_shim(top / "shim")
        subprocess.run(["chown", "-R", f"{pw.pw_uid}:{pw.pw_gid}", str(top)], check=True)
        repo = f"{registry.address}/rootless{uuid.uuid4().hex[:8]}"
        env = {"PATH": f"{top / 'shim'}:/usr/bin:/bin", "HOME": pw.pw_dir, "USER": USER, "PYTHONPATH": str(lib),
               "REGLESS_BASE_IMAGE": base_image, "REGLESS_CACHE_DIR": str(top / "cache"), "NO_COLOR": "1"}

        said: list[str] = []

        def build(*extra: str) -> dict[str, str]:
            p = subprocess.run(["runuser", "-u", USER, "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()),
                                "/usr/bin/python3", "-m", "reglessbuild.cli", "build", "--output", "json",
                                "--default-repo", repo, *extra], cwd=project, capture_output=True, text=True,
                               timeout=600)
            assert p.returncode == 0, p.stderr[-3000:]
            said.append(p.stderr)
            return {a["name"]: a["outcome"] for a in json.loads(p.stdout)["artifacts"]}

        def builds() -> int:
            return sum(1 for c in harness.calls(log) if c.split()[2:3] == ["build"])

        assert "XDG_RUNTIME_DIR" not in env
        assert build("-v") == {"web": "built", "tools": "built", "app": "built"}
        assert builds() == 3
        # no login session: regless made the tools a runtime folder of the user's own, and said so with -v
        runtime = Path(tempfile.gettempdir()) / f"regless-runtime-{pw.pw_uid}"
        assert f"XDG_RUNTIME_DIR is not set (no login session); buildah, skopeo and crane get {runtime}" in said[0]
        st = runtime.lstat()
        assert st.st_uid == pw.pw_uid and st.st_mode & 0o777 == 0o700
        assert build() == {"web": "cached", "tools": "cached", "app": "cached"}
        assert builds() == 3
        greet = project / "tools" / "greet.sh"
        greet.write_text(greet.read_text() + "echo rootless\n")
        assert build() == {"web": "cached", "tools": "built", "app": "built"}
        assert "XDG_RUNTIME_DIR" not in said[1]  # said with -v only
        # the images were built in regless's own storage of the user, not root's
        assert (Path(pw.pw_dir) / ".local/share/regless/containers/vfs").is_dir()
        harness.settled(harness.own_storage_lock(Path(pw.pw_dir) / ".local/share"))  # its removal, before cleanup
        assert (top / "cache" / "index" / "data.mdb").stat().st_uid == pw.pw_uid
    finally:
        shutil.rmtree(top, ignore_errors=True)
        shutil.rmtree(Path(tempfile.gettempdir()) / f"regless-runtime-{pw.pw_uid}", ignore_errors=True)

"""Separate CI runners on one machine, for the fan-out tests: each with its own HOME, regless cache dir,
buildah storage, XDG_RUNTIME_DIR and buildah call log (a counting shim, not a double)."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import harness


@dataclass(frozen=True)
class Runner:
    name: str
    env: dict[str, str]
    log: Path  # buildah calls

    def built(self) -> list[str]:
        """The `-t` reference of each `buildah build` that succeeded on this runner."""
        out = []
        for argv, rc in harness.exits(self.log):
            words = argv.split()
            if "build" in words[:4] and rc == 0:
                out.append(words[words.index("-t") + 1])
        return out


def runner(root: Path, name: str, base_env: dict[str, str]) -> Runner:
    home = root / name / "home"
    run_dir = root / name / "run"
    for d in (home, run_dir):
        d.mkdir(parents=True, exist_ok=True)
    run_dir.chmod(0o700)
    shim = root / name / "shim"
    log = harness.counting_shim(shim)
    env = {**base_env, "HOME": str(home), "XDG_RUNTIME_DIR": str(run_dir),
           "REGLESS_CACHE_DIR": str(root / name / "cache"),
           "CONTAINERS_STORAGE_CONF": harness.storage_conf(root / name / "storage"),
           "PATH": f"{shim}:{os.environ['PATH']}"}
    return Runner(name, env, log)


def labels(ref: str) -> dict[str, str]:
    p = subprocess.run(["skopeo", "inspect", "--config", "--tls-verify=false", f"docker://{ref}"],
                       capture_output=True, text=True, check=True)
    return json.loads(p.stdout).get("config", {}).get("Labels") or {}

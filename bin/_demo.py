"""bin/demo: regless on fixtures/demo, three runs, against a loopback registry started here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import harness  # noqa: E402

BOLD, OFF = ("\033[1m", "\033[0m") if sys.stdout.isatty() and not os.environ.get("NO_COLOR") else ("", "")
WORDS = ("cached", "retagged", "built", "failed", "skipped")


def say(text: str) -> None:
    print(f"\n{BOLD}== {text}{OFF}", flush=True)


def run(project: Path, env: dict[str, str], registry: str, builds_log: Path) -> tuple[dict[str, str], int]:
    before = len(harness.calls(builds_log))
    cmd = ["regless", "build", "--default-repo", f"{registry}/demo"]
    print(f"$ {' '.join(cmd)}", flush=True)
    # results (stdout) are echoed as they come; builder output (stderr) goes straight to the terminal
    p = subprocess.Popen(cmd, cwd=project, env={**env, "NO_COLOR": "1"}, stdout=subprocess.PIPE, text=True)
    outcomes = {}
    assert p.stdout is not None
    for line in p.stdout:
        words = line.split()
        if len(words) >= 2 and words[0] in WORDS:
            outcomes[words[1]] = words[0]
            line = line.replace(words[0], f"{BOLD}{words[0]}{OFF}", 1)
        sys.stdout.write(line)
        sys.stdout.flush()
    if p.wait() != 0:
        sys.exit(f"demo: regless build exited {p.returncode}")
    started = sum(1 for c in harness.calls(builds_log)[before:] if c.split()[2:3] == ["build"])
    print(f"builder processes started: {started}", flush=True)
    return outcomes, started


def expect(got: dict[str, str], want: dict[str, str]) -> None:
    if got != want:
        sys.exit(f"demo: expected {want}, got {got}")
    print("as expected: " + ", ".join(f"{k} {v}" for k, v in want.items()), flush=True)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="regless-demo-") as tmp_s:
        tmp = Path(tmp_s)
        (tmp / "registry").mkdir()
        with harness.LocalRegistry(tmp / "registry") as reg:
            say(f"registry started on {reg.address}; making the busybox base image")
            base = harness.make_base_image(reg.address)
            print(f"base image: {base}")
            project = tmp / "demo"
            shutil.copytree(ROOT / "fixtures" / "demo", project, symlinks=True)
            log = harness.counting_shim(tmp / "shim")
            env = {**os.environ, "REGLESS_BASE_IMAGE": base, "REGLESS_CACHE_DIR": str(tmp / "cache"),
                   "PATH": f"{tmp / 'shim'}:{os.environ['PATH']}"}

            say("run 1: empty registry and cache: every artifact is built")
            got, started = run(project, env, reg.address, log)
            expect(got, {"web": "built", "tools": "built", "app": "built"})

            say("run 2: nothing changed: every artifact is cached, no builder starts")
            got, started = run(project, env, reg.address, log)
            expect(got, {"web": "cached", "tools": "cached", "app": "cached"})
            if started:
                sys.exit("demo: a builder started on a no-change run")

            say("run 3: tools/greet.sh changed: tools and app (which requires it) rebuild, web stays cached")
            greet = project / "tools" / "greet.sh"
            greet.write_text(greet.read_text() + 'echo "now with a second line"\n')
            print(f"changed {greet.relative_to(tmp)}")
            got, started = run(project, env, reg.address, log)
            expect(got, {"web": "cached", "tools": "built", "app": "built"})
            say("demo done; registry stopped")


if __name__ == "__main__":
    main()

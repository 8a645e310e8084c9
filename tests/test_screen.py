"""The screen a person is left with: `regless build` of the demo in a real terminal (tmux), read back as
the terminal shows it once the run ends. Builder output is folded away and the live lines are gone:
one line per artifact in the config's order, then the summary."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid

import pytest

from conftest import REGLESS

WIDTH, HEIGHT = 120, 30


def _screen(argv: list[str], cwd, env, timeout: float = 300.0) -> list[str]:
    """Run `argv` in a detached tmux session WIDTH x HEIGHT; return the screen's lines once it exited."""
    if not shutil.which("tmux"):
        pytest.skip("tmux not on PATH (bin/test installs it)")
    sock = f"regless-test-{uuid.uuid4().hex[:8]}"
    cmd = " ".join(f"'{a}'" for a in argv) + '; echo "[exit $?]"; sleep 600'
    tmux = ["tmux", "-L", sock, "-f", "/dev/null"]
    subprocess.run([*tmux, "new-session", "-d", "-x", str(WIDTH), "-y", str(HEIGHT), "-c", str(cwd),
                    "sh", "-c", cmd], env={**env, "TERM": "xterm-256color"}, check=True)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, text=True).stdout
            if "[exit " in shown:
                return shown.rstrip("\n").splitlines()
            time.sleep(0.3)
        raise AssertionError(f"no exit within {timeout} s; screen:\n{shown}")
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


def test_demo_build_leaves_one_line_per_artifact_and_the_summary(demo):
    cfg = (demo.path / "regless.yaml").read_text()
    order = re.findall(r"^  - image: (\w+)", cfg, re.M)
    assert order == ["web", "tools", "app"]
    lines = [ln for ln in _screen([REGLESS, "build", "--default-repo", demo.repo], demo.path, demo.env) if ln.strip()]
    assert lines[-1] == "[exit 0]", "\n".join(lines)
    results, summary = lines[:-2], lines[-2]
    assert [ln.split()[:2] for ln in results] == [["built", n] for n in order], "\n".join(lines)
    for ln in results:
        assert re.fullmatch(rf"built    \w+ +{re.escape(demo.repo)}/\w+:[0-9a-f]{{32}}@sha256:[0-9a-f]{{12}}"
                            r"  \(\d+\.\ds\)", ln), ln
    assert re.fullmatch(r"3 artifacts: 3 built — hash \d+\.\d\ds, check \d+\.\d\ds, build \d+\.\d\ds", summary), summary
    assert all(len(ln) < WIDTH for ln in lines)  # nothing wrapped
    # a second run: every artifact cached, the same shape, nothing else on the screen
    lines = [ln for ln in _screen([REGLESS, "build", "--default-repo", demo.repo], demo.path, demo.env) if ln.strip()]
    assert [ln.split()[:2] for ln in lines[:-2]] == [["cached", n] for n in order], "\n".join(lines)
    assert lines[-2].startswith("3 artifacts: 3 cached — ") and lines[-1] == "[exit 0]"

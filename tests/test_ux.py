"""What a person sees: colours and progress on a terminal, plan, explain, help, skaffold.yaml import."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess

import pytest

from conftest import REGLESS


def _run_in_pty(argv: list[str], cwd, env) -> tuple[int, str]:
    """Run with stdout and stderr on a pseudo-terminal, as a person at a terminal would."""
    master, slave = pty.openpty()
    p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    while True:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None:
            break
    p.wait()
    os.close(master)
    return p.returncode, out.decode("utf-8", "replace")


def test_terminal_gets_colours_and_progress_and_pipes_get_neither(demo):
    demo.env.pop("NO_COLOR", None)
    rc, screen = _run_in_pty([REGLESS, "build", "--default-repo", demo.repo], demo.path, demo.env)
    assert rc == 0, screen
    assert "\033[32mbuilt" in screen  # built in green
    # one live line per running artifact: phase, name, elapsed time, the builder's current step
    assert re.search(r"\033\[Kbuilding +(web|tools|app) +\d+s  STEP \d+/\d+: ", screen), "no live line while building"
    assert not re.search(r"\[(web|tools|app)\] ", screen)  # builder output folded: no line of it stays
    rc, screen = _run_in_pty([REGLESS, "build", "--default-repo", demo.repo], demo.path, demo.env)
    assert rc == 0 and screen.count("\033[34mcached") == 3  # cached in blue
    assert "building" not in screen  # no line that did not happen
    rc, screen = _run_in_pty([REGLESS, "build", "--default-repo", demo.repo],
                             demo.path, {**demo.env, "NO_COLOR": "1"})
    assert rc == 0 and "\033[34m" not in screen and "cached" in screen
    rc, screen = _run_in_pty([REGLESS, "build", "-q", "--default-repo", demo.repo], demo.path, demo.env)
    assert "\r" not in screen.replace("\r\n", "\n")  # -q: no progress display
    piped = demo.run("build")
    assert "\033[" not in piped.stdout + piped.stderr


def test_summary_shows_phase_times_and_saving(demo):
    demo.build()
    res = demo.run("build", "-q")
    summary = res.stdout.splitlines()[-1]
    assert re.match(r"3 artifacts: 3 cached — hash \d+\.\d\ds, check \d+\.\d\ds; build time saved ≈ \d+\.\ds$",
                    summary), summary


def test_explain_lists_changes_most_significant_first(demo):
    demo.build()
    same = demo.run("explain", "tools")
    assert same.returncode == 0
    assert "nothing changed since its last recorded build" in same.stdout and "tools is cached: found" in same.stdout
    (demo.path / "tools" / "greet.sh").write_text("#!/bin/sh\necho changed\n")
    df = demo.path / "tools" / "Dockerfile"
    df.write_text(df.read_text().replace("COPY greet.sh /usr/local/bin/greet",
                                         "COPY greet.sh /usr/local/bin/greet\nCOPY extra.txt /"))
    (demo.path / "tools" / "extra.txt").write_text("new\n")
    cfg = demo.path / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("      BASE: ${REGLESS_BASE_IMAGE}",
                                           "      BASE: ${REGLESS_BASE_IMAGE}\n      MODE: fast"))
    res = demo.run("explain", "tools")
    lines = res.stdout.splitlines()
    assert lines[0].startswith("tools: 4 changes since its last recorded build")
    assert [ln.strip() for ln in lines[1:5]] == [
        "Dockerfile changed", "build arg MODE changed (added: fast)", "file added: extra.txt",
        "file content changed: greet.sh"]
    assert lines[5] == "tools would be built: no image for this hash"
    js = json.loads(demo.run("explain", "tools", "--output", "json").stdout)
    assert js["outcome"] == "built" and [c["kind"] for c in js["changes"]] == ["setting", "setting", "added", "content"]


def test_explain_exec_bit_and_deleted_image(demo):
    arts = {a["name"]: a for a in demo.build().json()["artifacts"]}
    (demo.path / "tools" / "greet.sh").chmod(0o644)
    assert "executable bit changed: greet.sh (no longer executable)" in demo.run("explain", "tools").stdout
    (demo.path / "tools" / "greet.sh").chmod(0o755)
    web = arts["web"]
    subprocess.run(["skopeo", "delete", "--tls-verify=false", f"docker://{web['image']}@{web['digest']}"],
                   check=True, capture_output=True)
    res = demo.run("explain", "web")
    assert "nothing changed since its last recorded build" in res.stdout
    assert "web would be built: its image is gone from the registry" in res.stdout  # why it still rebuilds


def test_plan_reasons(demo):
    demo.build()
    cfg = demo.path / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("image: web ", "image: website "))
    res = demo.run("plan")
    line = next(ln for ln in res.stdout.splitlines() if "website" in ln)
    assert line.startswith("retagged") and f"from {demo.repo}/web:" in line
    assert demo.builds_started() == 3
    assert demo.run("plan").stdout.count("found") == 2  # plan recorded nothing: still a retag, not a hit


@pytest.mark.parametrize("command", ["build", "plan", "explain", "hash", "deps", "version", "cache",
                                     "cache ls", "cache prune", "cache verify", "cache add", "cache import"])
def test_every_help_has_an_example(command):
    p = subprocess.run([REGLESS, *command.split(), "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "example" in p.stdout.lower(), p.stdout


def test_top_level_help_names_every_command():
    p = subprocess.run([REGLESS, "--help"], capture_output=True, text=True)
    for c in ("build", "plan", "explain", "hash", "deps", "cache", "version", "exit codes"):
        assert c in p.stdout

# skaffold.yaml: tests/test_skaffold_cli.py


def test_a_log_gets_a_line_when_an_artifact_starts_and_ends_and_results_in_config_order(demo):
    cfg = demo.path / "regless.yaml"
    text = cfg.read_text()
    head, arts = text.split("artifacts:\n")
    web, tools, app = arts.split("  - image: ")[1:]
    cfg.write_text(f"{head}artifacts:\n  - image: {app}  - image: {web}  - image: {tools}")  # app before tools
    res = demo.run("build")
    assert res.returncode == 0, res.stderr
    # no builder line in the log; one when each build starts, one when it ends
    assert "STEP" not in res.stderr and "Copying blob" not in res.stderr
    starts = re.findall(r"^\[(\w+)\] building \S+$", res.stderr, re.M)
    ends = re.findall(r"^\[(\w+)\] built in \d+\.\ds$", res.stderr, re.M)
    assert sorted(starts) == sorted(ends) == ["app", "tools", "web"], res.stderr
    assert res.stderr.index("[tools] built in") < res.stderr.index("[app] building")  # the work's order
    assert [ln.split()[1] for ln in res.stdout.splitlines()[:3]] == ["app", "web", "tools"]  # the config's order
    js = demo.run("build", "--output", "json", "--no-cache").json()
    assert [a["name"] for a in js["artifacts"]] == ["app", "web", "tools"]
    # the builder's full output of that run, one file per artifact
    log = js["artifacts"][2]["log"]
    assert log and "STEP 1/" in open(log).read() and "/logs/" in log


def test_a_failed_build_shows_its_last_30_lines_and_where_the_rest_is(demo):
    df = demo.path / "tools" / "Dockerfile"
    df.write_text(df.read_text() + "RUN i=0; while test $i -lt 40; do echo out-$i; i=$((i+1)); done; false\n")
    res = demo.run("build")
    assert res.returncode == 1
    shown = re.findall(r"^  \| (.*)$", res.stderr, re.M)
    assert len(shown) == 30 and "out-39" in shown and "out-5" not in shown, res.stderr
    path = re.search(r"^  full builder output: (\S+)$", res.stderr, re.M).group(1)
    full = open(path).read()
    assert all(f"out-{i}\n" in full for i in range(40))
    assert re.search(r"^failed +tools .*\n +error: .*\n +log: " + re.escape(path), res.stdout, re.M), res.stdout
    assert "skipped  app" in res.stdout  # requires tools
    # -v: every builder line as it comes, none cut
    verbose = demo.run("build", "-v")
    assert all(f"[tools] out-{i}\n" in verbose.stderr for i in range(40))


def _unreachable(demo, seconds: int = 4) -> None:
    cfg = demo.path / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("  insecure: [127.0.0.1]", f"  insecure: [127.0.0.1]\n  timeout: {seconds}"))


def test_waiting_for_a_registry_is_one_line_per_retry_in_a_log_with_v(demo):
    _unreachable(demo)
    res = demo.run("plan", "-v", "--default-repo", "127.0.0.1:1/d", default_repo=False)
    assert res.returncode == 3, res.stderr
    said = re.findall(r"^regless: registry 127\.0\.0\.1:1: connection refused, retrying in (\d+\.\d)s "
                      r"\((\d+)s of 4s\)$", res.stderr, re.M)
    assert len(said) >= 3, res.stderr  # 0.5, 1, 2 s ... within 4 s
    assert [float(w) for w, _ in said][:2] <= [1.0, 2.0] and int(said[-1][1]) <= 4
    quiet = demo.run("plan", "--default-repo", "127.0.0.1:1/d", default_repo=False)
    assert "retrying" not in quiet.stderr  # a log without -v: only the final error
    assert "did not answer (retried for up to 4 s)" in quiet.stderr


def test_waiting_for_a_registry_shows_on_a_terminal(demo):
    _unreachable(demo)
    rc, screen = _run_in_pty([REGLESS, "plan", "--default-repo", "127.0.0.1:1/d"], demo.path, demo.env)
    assert rc == 3
    assert re.search(r"waiting  registry 127\.0\.0\.1:1: connection refused, retrying in \d+\.\ds \(\d+s of 4s\)",
                     screen), screen


@pytest.mark.parametrize("stderr, cause", [
    ('time="2024" level=fatal msg="Error reading manifest x in 127.0.0.1:1/d/web: pinging container registry '
     '127.0.0.1:1: Get \\"http://127.0.0.1:1/v2/\\": dial tcp 127.0.0.1:1: connect: connection refused"',
     "connection refused"),
    ("Error: GET http://127.0.0.1:5000/v2/a/manifests/b: unexpected status code 503 Service Unavailable",
     "503 Service Unavailable"),
    ("Error: GET http://h/v2/a/manifests/b: TOOMANYREQUESTS: slow down", "TOOMANYREQUESTS"),
])
def test_a_retry_names_its_cause_in_a_few_words(stderr, cause):
    from reglessbuild.faults import short_cause

    assert short_cause(stderr) == cause

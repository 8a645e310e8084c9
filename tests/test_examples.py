"""examples/: the GitHub Actions workflow and the GitLab CI file are parsed, and their regless commands run in
their order (plan job -> one build job per matrix entry, at once, each on a runner of its own -> deploy job)
against the local registry, on fixtures/fanout (ten images, requires chains across shares)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import yaml

from conftest import REGLESS, ROOT
from runners import runner

EXAMPLES = ROOT / "examples"


def _ci(line: str, values: dict[str, str]) -> str:
    """What GitHub Actions makes of a line before the shell sees it: ${{ matrix.x }} replaced."""
    return re.sub(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", lambda m: values[f"matrix.{m.group(1)}"], line)


def _expand(word: str, values: dict[str, str]) -> str:
    """What the shell makes of a word: $VAR and ${VAR}."""
    return re.sub(r"\$(\w+)|\$\{(\w+)\}", lambda m: values[m.group(1) or m.group(2)], word)


def _regless_lines(script: str) -> list[str]:
    return [ln.strip() for ln in script.splitlines() if ln.strip().startswith("regless ")]


Started = tuple[subprocess.Popen, Path, Path, Path | None]


def _start(line: str, values: dict[str, str], env: dict[str, str], cwd: Path) -> Started:
    """A job's command started, its output going to files (jobs that wait on each other never block on a
    pipe nobody reads)."""
    words = [_expand(w, values) for w in shlex.split(_ci(line, values))]
    out = None
    if ">" in words:
        out = cwd / words[words.index(">") + 1]
        words = words[: words.index(">")]
    logs = Path(env["HOME"]).parent
    n = len(list(logs.glob("*.stdout")))
    stdout, stderr = logs / f"{n}.stdout", logs / f"{n}.stderr"
    p = subprocess.Popen([REGLESS, *words[1:]], cwd=cwd, env=env, stdout=stdout.open("w"), stderr=stderr.open("w"),
                         text=True)
    return p, stdout, stderr, out


def _finish(started: Started) -> str:
    p, stdout, stderr, out = started
    p.wait(timeout=600)
    assert p.returncode == 0, f"{p.args}: {stderr.read_text()}{stdout.read_text()}"
    if out:
        out.write_text(stdout.read_text())
    return stderr.read_text()


def _run_all(lines: list[str], values: dict[str, str], env: dict[str, str], cwd: Path) -> list[str]:
    return [_finish(_start(ln, values, env, cwd)) for ln in lines]


def _deploy_checks(fan, tmp_path, deployer) -> None:  # type: ignore[no-untyped-def]
    assert deployer.built() == []  # the deploy job built nothing: the shares did
    builds = json.loads((fan.path / "builds.json").read_text())["builds"]
    assert len(builds) == 10
    for b in builds:
        assert fan.digest(b["tag"].split("@")[0]) == b["tag"].rsplit("@", 1)[1]


def test_github_workflow_plan_matrix_of_build_jobs_then_deploy(make_project, tmp_path):
    fan = make_project("fanout")
    wf = yaml.safe_load((EXAMPLES / "github" / "images.yml").read_text())
    jobs = wf["jobs"]
    assert jobs["build"]["needs"] == "plan" and jobs["deploy"]["needs"] == "build"
    assert jobs["build"]["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    assert jobs["plan"]["outputs"]["matrix"] == "${{ steps.plan.outputs.matrix }}"
    script = {name: "\n".join(s.get("run", "") for s in job["steps"]) for name, job in jobs.items()}
    assert 'echo "matrix=$(cat matrix.json)" >> "$GITHUB_OUTPUT"' in script["plan"]
    values = {"IMAGE_REPO": fan.repo}

    _run_all(_regless_lines(script["plan"]), values, runner(tmp_path, "plan", fan.env).env, fan.path)
    matrix = json.loads((fan.path / "matrix.json").read_text())
    assert len(matrix["include"]) == 4 and (fan.path / "plan.json").is_file()
    builders = [runner(tmp_path, f"build{i}", fan.env) for i in range(len(matrix["include"]))]
    started = [_start(ln, {**values, **{f"matrix.{k}": v for k, v in entry.items()}}, b.env, fan.path)
               for entry, b in zip(matrix["include"], builders, strict=True) for ln in _regless_lines(script["build"])]
    errs = [_finish(s) for s in started]
    assert any("waiting for " in e for e in errs)  # some job met another's image in the registry
    assert sorted(ref.rsplit("/", 1)[1].split(":")[0] for b in builders for ref in b.built()) == sorted(
        n for e in matrix["include"] for n in e["artifacts"].split())
    deployer = runner(tmp_path, "deploy", fan.env)
    _run_all(_regless_lines(script["deploy"]), values, deployer.env, fan.path)
    _deploy_checks(fan, tmp_path, deployer)


def test_gitlab_pipeline_plan_child_pipeline_matrix_then_deploy(make_project, tmp_path):
    fan = make_project("fanout")
    ci = yaml.safe_load((EXAMPLES / "gitlab" / ".gitlab-ci.yml").read_text())
    assert ci["stages"] == ["plan", "build", "deploy"]
    assert [ci[j]["stage"] for j in ("plan", "build", "deploy")] == ["plan", "build", "deploy"]
    assert ci["build"]["trigger"]["include"] == [{"artifact": "shares.yml", "job": "plan"}]
    assert set(ci["plan"]["artifacts"]["paths"]) == {"plan.json", "shares.yml"}
    values = {"IMAGE_REPO": fan.repo}

    plan_lines = [ln for ln in ci["plan"]["script"] if ln.startswith("regless ")]
    _run_all(plan_lines, values, runner(tmp_path, "plan", fan.env).env, fan.path)
    # the plan job's heredoc, as the shell writes it: \$ stays a $, $(cat matrix.json) is the matrix
    heredoc = next(s for s in ci["plan"]["script"] if "cat > shares.yml <<EOF" in s)
    body = heredoc.split("<<EOF\n", 1)[1].rsplit("EOF", 1)[0]
    body = body.replace("$(cat matrix.json)", (fan.path / "matrix.json").read_text().strip())
    body = body.replace("$CI_PIPELINE_ID", "1").replace("\\$", "$")
    child = yaml.safe_load(body)
    matrix = json.loads((fan.path / "matrix.json").read_text())
    assert child["build"]["parallel"]["matrix"] == matrix and len(matrix) == 4
    assert child["build"]["needs"] == [{"pipeline": 1, "job": "plan"}]
    builders = [runner(tmp_path, f"build{i}", fan.env) for i in range(len(matrix))]
    started = [_start(ln, {**values, **entry}, b.env, fan.path)
               for entry, b in zip(matrix, builders, strict=True) for ln in child["build"]["script"] if ln.startswith("regless ")]
    assert len(started) == 4
    errs = [_finish(s) for s in started]
    assert any("waiting for " in e for e in errs)
    deployer = runner(tmp_path, "deploy", fan.env)
    _run_all([ln for ln in ci["deploy"]["script"] if ln.startswith("regless ")], values, deployer.env, fan.path)
    _deploy_checks(fan, tmp_path, deployer)

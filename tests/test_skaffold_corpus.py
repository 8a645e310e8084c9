"""No traceback on bad input: every command over a corpus of broken configs, files and arguments.

Each case must end with exit 2 and one `regless: error:` line (a `hint:` line may follow),
never a Python traceback. The corpus includes Skaffold's own example configs
(fixtures/skaffold-examples, see SOURCE.md there): read as they are (what regless builds
from each, or why it refuses it) and broken in a few ways.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from reglessbuild import config
from reglessbuild.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "fixtures" / "skaffold-examples"
REGLESS = str(Path(sys.executable).with_name("regless"))
CONFIG_COMMANDS = (("build",), ("plan",), ("hash", "app"), ("deps", "app"), ("explain", "app"))

# what regless makes of each example as it is: its artifacts, or the refusal it gives
EXPECTED = {
    "getting-started": ["skaffold-example"],
    "microservices": ["leeroy-web", "leeroy-app", "base"],
    "multi-config-microservices": ["base", "leeroy-app", "leeroy-web"],
    "profiles": ["skaffold-world"],
    "profile-patches": ["skaffold-base"],
    "tagging-with-environment-variables": ["skaffold-example"],
    "simple-artifact-dependency": ["app", "base"],
    "cross-platform-builds": ["skaffold-example"],
    "nodejs": ["node-example"],
    "structure-tests": ["skaffold-example"],
    "lifecycle-hooks": ["hooks-example"],
    "helm-deployment": ["skaffold-helm"],
    "templated-fields": "is a custom artifact, which regless cannot build",
    "buildpacks": "is a buildpacks artifact, which regless cannot build",
    "jib": "is a jib artifact, which regless cannot build",
    "ko": "is a ko artifact, which regless cannot build",
    "custom": "is a custom artifact, which regless cannot build",
    "bazel": "is a bazel artifact, which regless cannot build",
    "docker-deploy": "build.local.push: false",
}


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([REGLESS, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "REGLESS_CACHE_DIR": str(cwd / ".cache"), "NO_COLOR": "1",
                               "FOO": "v1", **(env or {})})


def one_clear_error(res: subprocess.CompletedProcess[str], what: str) -> None:
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, f"{what}:\n{res.stderr}"
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("regless: error:")]
    assert res.returncode == 2, f"{what}: exit {res.returncode}\n{res.stderr}"
    assert len(errors) == 1, f"{what}:\n{res.stderr}"
    others = [ln for ln in res.stderr.splitlines()
              if not ln.startswith(("regless: error:", "  hint:", "warning:", "usage:", "regless"))]
    assert not others, f"{what}: more than one error line:\n{res.stderr}"


REGLESS_WORDS = ("regless.yaml", "registry.insecure", "defaultRepo", "builder.", "registry.timeout")


def in_skaffold_words(res: subprocess.CompletedProcess[str], what: str) -> None:
    """A skaffold.yaml's errors speak its own words, not regless.yaml's."""
    for word in REGLESS_WORDS:
        assert word not in res.stderr, f"{what}: {word!r} in a skaffold.yaml's message:\n{res.stderr}"


def test_the_corpus_holds_at_least_ten_real_skaffold_examples():
    found = sorted(p.parent.name for p in EXAMPLES.glob("*/skaffold.yaml"))
    assert len(found) >= 10 and set(EXPECTED) == set(found)
    assert "Apache License" in (EXAMPLES / "LICENSE").read_text() and "359a940c1b" in (EXAMPLES / "SOURCE.md").read_text()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_real_example_is_read_or_refused_with_a_reason(name):
    want = EXPECTED[name]
    path = EXAMPLES / name / "skaffold.yaml"
    if isinstance(want, str):
        with pytest.raises(InputError) as exc:
            config.load(path, default_repo="127.0.0.1:5000/x", env={"FOO": "v1"})
        assert want in str(exc.value) and "skaffold.yaml:" in str(exc.value)
    else:
        p = config.load(path, default_repo="127.0.0.1:5000/x", env={"FOO": "v1"})
        assert [a.name for a in p.artifacts] == want
        for a in p.artifacts:
            assert a.dockerfile.is_file() and str(a.ref).startswith("127.0.0.1:5000/x/")


def _break(folder: Path, how: str) -> None:
    cfg = folder / "skaffold.yaml"
    if how == "typo":
        text = cfg.read_text()
        broken = text.replace("  artifacts:", "  artifact:", 1) if "  artifacts:" in text else \
            text.replace("requires:", "requirs:", 1)
        assert broken != text
        cfg.write_text(broken)
    elif how == "no-dockerfile":
        for d in folder.rglob("Dockerfile"):
            d.unlink()
    elif how == "not-utf8":
        cfg.write_bytes(cfg.read_bytes() + b"\n# caf\xe9\n")
    elif how == "bad-yaml":
        cfg.write_text(cfg.read_text() + "\n  - : [unclosed\n")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_command_on_each_real_example_broken_gives_one_clear_error(name, tmp_path):
    ways = ("typo", "no-dockerfile", "not-utf8", "bad-yaml")
    cases = []
    for i, cmd in enumerate(CONFIG_COMMANDS):
        folder = tmp_path / f"{name}-{i}"
        shutil.copytree(EXAMPLES / name, folder)
        how = ways[(i + len(name)) % len(ways)]
        if how == "no-dockerfile" and isinstance(EXPECTED[name], str):
            how = "typo"
        _break(folder, how)
        cases.append((folder, cmd, how))
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:  # the commands are independent
        results = list(pool.map(lambda c: run(*c[1], "--default-repo", "127.0.0.1:5000/x", cwd=c[0]), cases))
    for (_, cmd, how), res in zip(cases, results, strict=True):
        one_clear_error(res, f"{name} broken by {how}: regless {' '.join(cmd)}")
        in_skaffold_words(res, f"{name} broken by {how}")
        assert "no artifact named" not in res.stderr  # the breakage was found, not the command's argument
    res = run("plan", "--default-repo", "Not A/Repo", cwd=tmp_path / f"{name}-0")
    one_clear_error(res, f"{name}: a bad --default-repo")


REGLESS_OK = "artifacts:\n  - image: app\n"
SKAFFOLD_OK = "apiVersion: skaffold/v4beta13\nkind: Config\nbuild:\n  artifacts:\n  - image: app\n"

BAD_CONFIGS = {
    "malformed yaml": ("regless.yaml", "artifacts: [\n"),
    "malformed skaffold yaml": ("skaffold.yaml", SKAFFOLD_OK + "  - image: [\n"),
    "tab-indented yaml": ("skaffold.yaml", SKAFFOLD_OK + "\t- image: x\n"),
    "empty regless.yaml": ("regless.yaml", ""),
    "empty skaffold.yaml": ("skaffold.yaml", ""),
    "a list at the top": ("skaffold.yaml", "- a\n- b\n"),
    "a scalar at the top": ("regless.yaml", "just text\n"),
    "wrong type: artifacts": ("skaffold.yaml", "apiVersion: skaffold/v4beta13\nbuild:\n  artifacts: 5\n"),
    "wrong type: image": ("skaffold.yaml", SKAFFOLD_OK.replace("image: app", "image: [a]")),
    "wrong type: context": ("skaffold.yaml", SKAFFOLD_OK + "    context: 3\n"),
    "wrong type: buildArgs": ("skaffold.yaml", SKAFFOLD_OK + "    docker: {buildArgs: [a]}\n"),
    "wrong type: buildArg value": ("skaffold.yaml", SKAFFOLD_OK + "    docker: {buildArgs: {A: [1]}}\n"),
    "wrong type: docker": ("skaffold.yaml", SKAFFOLD_OK + "    docker: 7\n"),
    "wrong type: requires": ("skaffold.yaml", SKAFFOLD_OK + "    requires: base\n"),
    "wrong type: profiles": ("skaffold.yaml", SKAFFOLD_OK + "profiles: 3\n"),
    "wrong type: patches": ("skaffold.yaml", SKAFFOLD_OK + "profiles:\n- name: p\n  activation: [{env: A}]\n"),
    "wrong type: tagPolicy": ("skaffold.yaml", SKAFFOLD_OK + "  tagPolicy: latest\n"),
    "wrong type: insecureRegistries": ("skaffold.yaml", SKAFFOLD_OK + "  insecureRegistries: {a: b}\n"),
    "wrong type: local.concurrency": ("skaffold.yaml", SKAFFOLD_OK + "  local: {concurrency: many}\n"),
    "wrong type: regless buildArgs": ("regless.yaml", REGLESS_OK + "    buildArgs: [a]\n"),
    "wrong type: regless timeout": ("regless.yaml", "registry: {timeout: soon}\n" + REGLESS_OK),
    "requires: [base]": ("skaffold.yaml", SKAFFOLD_OK + "    requires: [base]\n"),
    "requires an unknown image": ("skaffold.yaml", SKAFFOLD_OK + "    requires: [{image: nope}]\n"),
    "requires itself": ("skaffold.yaml", SKAFFOLD_OK + "    requires: [{image: app}]\n"),
    "duplicate key": ("skaffold.yaml", SKAFFOLD_OK + "    context: .\n    context: .\n"),
    "duplicate image": ("skaffold.yaml", SKAFFOLD_OK + "  - image: app\n"),
    "image with a tag": ("skaffold.yaml", SKAFFOLD_OK.replace("image: app", "image: app:1")),
    "uppercase image": ("skaffold.yaml", SKAFFOLD_OK.replace("image: app", "image: App")),
    "missing context": ("skaffold.yaml", SKAFFOLD_OK + "    context: nowhere\n"),
    "missing dockerfile": ("skaffold.yaml", SKAFFOLD_OK + "    docker: {dockerfile: Nope}\n"),
    "missing required config": ("skaffold.yaml", "apiVersion: skaffold/v4beta13\nrequires: [{path: ../gone}]\n"),
    "required config cycle": ("skaffold.yaml", "apiVersion: skaffold/v4beta13\nrequires: [{path: sub}]\n"),
    "unknown profile key": ("skaffold.yaml", SKAFFOLD_OK + "profiles:\n- name: p\n  bulid: {}\n"),
    "patch on a missing path": ("skaffold.yaml", SKAFFOLD_OK + "profiles:\n- name: p\n  activation: [{env: HOME=.}]\n"
                                "  patches: [{op: remove, path: /build/nope}]\n"),
    "unclosed template": ("skaffold.yaml", SKAFFOLD_OK + "    docker: {buildArgs: {A: '{{.X'}}\n"),
    "template with a bad token": ("skaffold.yaml", SKAFFOLD_OK + "    docker: {buildArgs: {A: '{{ ; }}'}}\n"),
    "cmd template that fails": ("skaffold.yaml", SKAFFOLD_OK + "    docker: {buildArgs: {A: '{{cmd \"false\"}}'}}\n"),
    "cmd template, no such program": ("skaffold.yaml", SKAFFOLD_OK +
                                      "    docker: {buildArgs: {A: '{{cmd \"no-such-program-x\"}}'}}\n"),
    "bad apiVersion": ("skaffold.yaml", SKAFFOLD_OK.replace("skaffold/v4beta13", "v9")),
    "regless apiVersion": ("regless.yaml", "apiVersion: regless/v9\n" + REGLESS_OK),
    "gitCommit outside git": ("skaffold.yaml", SKAFFOLD_OK + "  tagPolicy: {gitCommit: {}}\n"),
    "two taggers": ("skaffold.yaml", SKAFFOLD_OK + "  tagPolicy: {sha256: {}, gitCommit: {}}\n"),
    "inputDigest in a customTemplate": ("skaffold.yaml", SKAFFOLD_OK + "  tagPolicy: {customTemplate: {template: "
                                        "'{{.D}}', components: [{name: D, inputDigest: {}}]}}\n"),
    "bad timezone": ("skaffold.yaml", SKAFFOLD_OK + "  tagPolicy: {dateTime: {timezone: Mars/Base}}\n"),
    "bad env activation": ("skaffold.yaml", SKAFFOLD_OK + "profiles:\n- name: p\n  activation: [{env: NOEQUALS}]\n"),
}


def _project(folder: Path, case: str) -> None:
    name, text = BAD_CONFIGS[case]
    folder.mkdir(parents=True)
    (folder / "Dockerfile").write_text("FROM scratch\n")
    (folder / name).write_text(text)
    if case == "required config cycle":
        (folder / "sub").mkdir()
        (folder / "sub" / "skaffold.yaml").write_text("apiVersion: skaffold/v4beta13\nrequires: [{path: ..}]\n")


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_every_config_command_on_a_bad_config_gives_one_clear_error(case, tmp_path):
    folders = [tmp_path / f"p{i}" for i in range(len(CONFIG_COMMANDS))]
    for folder in folders:
        _project(folder, case)
    with ThreadPoolExecutor(max_workers=len(CONFIG_COMMANDS)) as pool:  # the commands are independent
        results = list(pool.map(lambda fc: run(*fc[1], "--default-repo", "127.0.0.1:5000/x", cwd=fc[0]),
                                zip(folders, CONFIG_COMMANDS, strict=True)))
    for cmd, res in zip(CONFIG_COMMANDS, results, strict=True):
        one_clear_error(res, f"{case}: regless {' '.join(cmd)}")
        if BAD_CONFIGS[case][0] == "skaffold.yaml":
            in_skaffold_words(res, case)


BAD_FILES = {
    "non-UTF-8 regless.yaml": lambda f: (f / "regless.yaml").write_bytes(b"artifacts:\n  - image: \xff\n"),
    "non-UTF-8 Dockerfile": lambda f: (f / "Dockerfile").write_bytes(b"FROM scratch\nCOPY caf\xe9 /\n"),
    "non-UTF-8 .dockerignore": lambda f: (f / ".dockerignore").write_bytes(b"caf\xe9\n"),
    "Dockerfile is a folder": lambda f: ((f / "Dockerfile").unlink(), (f / "Dockerfile").mkdir()),
    "-f names a folder": None,
    "-f names a missing file": None,
    "no config here": None,
    "--file-output in a missing folder": None,
    "bad --default-repo": None,
    "a profile that does not exist": None,
    "-p with regless.yaml": None,
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_every_config_command_on_a_bad_file_or_argument_gives_one_clear_error(case, tmp_path):
    for i, cmd in enumerate(CONFIG_COMMANDS):
        folder = tmp_path / f"p{i}"
        folder.mkdir()
        (folder / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
        (folder / "regless.yaml").write_text(REGLESS_OK)
        extra: list[str] = ["--default-repo", "127.0.0.1:5000/x"]
        if BAD_FILES[case] is not None:
            BAD_FILES[case](folder)
        elif case == "-f names a folder":
            extra += ["-f", str(folder)]
        elif case == "-f names a missing file":
            extra += ["-f", str(folder / "nope.yaml")]
        elif case == "no config here":
            (folder / "regless.yaml").unlink()
        elif case == "--file-output in a missing folder":
            if cmd[0] != "build":
                continue
            extra += ["--file-output", str(folder / "no" / "such" / "f.json")]
        elif case == "bad --default-repo":
            extra = ["--default-repo", "http://UPPER:case/x"]
        elif case == "a profile that does not exist":
            (folder / "regless.yaml").unlink()
            (folder / "skaffold.yaml").write_text(SKAFFOLD_OK)
            extra += ["-p", "nope"]
        elif case == "-p with regless.yaml":
            extra += ["-p", "any"]
        res = run(*cmd, *extra, cwd=folder)
        one_clear_error(res, f"{case}: regless {' '.join(cmd)}")


CACHE_CASES = {
    "show: no such hash": ("cache", "show", "ffff"),
    "rm: no such hash": ("cache", "rm", "ffff"),
    "prune: nothing to prune by": ("cache", "prune"),
    "prune: bad duration": ("cache", "prune", "--older-than", "soon"),
    "prune: negative keep": ("cache", "prune", "--keep", "-1"),
    "add: not a reference": ("cache", "add", "Not A Ref"),
    "add: no hash tag": ("cache", "add", "127.0.0.1:5000/x/app"),
    "import: missing file": ("cache", "import", "nope.jsonl"),
    "import: malformed file": ("cache", "import", "bad.jsonl"),
    "import: non-UTF-8 file": ("cache", "import", "latin1.jsonl"),
    "export: a missing folder": ("cache", "export", "no/such/out.jsonl"),
    "verify: malformed regless.yaml": ("cache", "verify", "-f", "broken.yaml"),
    "unknown command": ("frobnicate",),
}


@pytest.mark.parametrize("case", sorted(CACHE_CASES))
def test_cache_commands_and_arguments_give_one_clear_error(case, tmp_path):
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    (tmp_path / "latin1.jsonl").write_bytes(b'{"hash": "caf\xe9"}\n')
    (tmp_path / "broken.yaml").write_text("artifacts: [\n")
    res = run(*CACHE_CASES[case], cwd=tmp_path)
    if case == "unknown command":
        assert res.returncode == 2 and "Traceback" not in res.stderr and "invalid choice" in res.stderr
        return
    one_clear_error(res, case)

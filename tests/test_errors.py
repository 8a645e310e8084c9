"""Bad input gets one clear line, the exit code of DESIGN.md, and no traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from harness import free_port


def _one_clear_line(res, *needles: str) -> None:
    assert "Traceback" not in res.stderr
    error_lines = [ln for ln in res.stderr.splitlines() if ln.startswith("regless: error:")]
    assert len(error_lines) == 1, res.stderr
    for n in needles:
        assert n in res.stderr, res.stderr


def test_no_config_found(demo, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    res = demo.run("build", cwd=empty)
    assert res.returncode == 2
    _one_clear_line(res, "no regless.yaml found", "-f FILE")


def test_missing_dockerfile_names_file_and_line(demo):
    (demo.path / "tools" / "Dockerfile").unlink()
    res = demo.run("build")
    assert res.returncode == 2
    _one_clear_line(res, "regless.yaml:", "Dockerfile", "does not exist")


def test_unknown_key_names_line(demo):
    cfg = demo.path / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("    context: app\n", "    context: app\n    contxt: oops\n"))
    res = demo.run("build")
    assert res.returncode == 2
    line = cfg.read_text().splitlines().index("    contxt: oops") + 1
    _one_clear_line(res, f"regless.yaml:{line}:", "unknown key 'contxt'")


def test_requires_cycle_is_named(demo):
    cfg = demo.path / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("    context: tools\n",
                                           "    context: tools\n    requires: [{image: app, alias: X}]\n"))
    res = demo.run("build")
    assert res.returncode == 2
    _one_clear_line(res, "requires cycle", "tools -> app -> tools")


def test_registry_not_reachable_exits_3_naming_it(demo, tmp_path):
    proj = tmp_path / "unreachable"
    shutil.copytree(demo.path / "web", proj)
    (proj / "regless.yaml").write_text(
        "apiVersion: regless/v1\nregistry: {insecure: [127.0.0.1], timeout: 1}\nartifacts:\n  - image: web\n")
    dead = f"127.0.0.1:{free_port()}"
    res = demo.run("build", "--default-repo", f"{dead}/x", cwd=proj, default_repo=False)
    assert res.returncode == 3
    _one_clear_line(res, f"registry {dead}", "did not answer")


def test_buildah_missing_exits_2_with_install_hint(demo, tmp_path):
    bindir = tmp_path / "onlyskopeo"
    bindir.mkdir()
    os.symlink(shutil.which("skopeo"), bindir / "skopeo")
    env = {**demo.env, "PATH": f"{bindir}:{Path(os.sys.executable).parent}"}
    res = demo.run("build", env=env)
    assert res.returncode == 2
    _one_clear_line(res, "buildah not found", "apt-get install buildah")


def test_unknown_artifact_on_the_command_line(demo):
    res = demo.run("build", "nope")
    assert res.returncode == 2
    _one_clear_line(res, "no artifact named 'nope'", "known artifacts: web, tools, app")


def test_failed_build_exits_1_and_shows_the_builder_tail(demo):
    df = demo.path / "tools" / "Dockerfile"
    df.write_text(df.read_text() + "RUN echo about-to-fail && false\n")
    res = demo.run("build", "--output", "json")
    assert res.returncode == 1
    out = {a["name"]: a for a in res.json()["artifacts"]}
    assert out["tools"]["outcome"] == "failed" and out["app"]["outcome"] == "skipped"
    assert out["web"]["outcome"] == "built"
    ls = demo.run("cache", "ls", "--json")  # a failed build records nothing; the others are recorded
    assert [e["hash"] for e in ls.json()["entries"]] == [out["web"]["hash"]]
    text = demo.run("build")
    assert text.returncode == 1 and "about-to-fail" in text.stderr  # the builder's tail: diagnostics, not results


def test_a_reader_that_goes_away_ends_the_output_quietly(tmp_path):
    from conftest import REGLESS

    for i in range(2000):  # more than a pipe holds: about 200 KB of `deps --json`
        d = tmp_path / "app" / f"d{i // 200}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}.txt").write_text(str(i))
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\nCOPY . /app/\n")
    (tmp_path / "regless.yaml").write_text(
        "apiVersion: regless/v1\ndefaultRepo: 127.0.0.1:1/x\nartifacts:\n  - image: app\n    context: app\n")
    p = subprocess.Popen([REGLESS, "deps", "app", "--json"], cwd=tmp_path, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env={**os.environ, "REGLESS_CACHE_DIR": str(tmp_path / "cache")})
    assert p.stdout.read(100).startswith(b'{\n  "version": 2,')
    p.stdout.close()  # what `| head -c 100` does
    assert p.wait(60) == 141
    assert p.stderr.read() == b""


def _small_project(tmp_path: Path) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\nARG MSG\nCOPY . /app/\n")
    (tmp_path / "regless.yaml").write_text(
        "apiVersion: regless/v1\ndefaultRepo: 127.0.0.1:1/x\nartifacts:\n  - image: app\n    context: app\n"
        "    buildArgs: {MSG: '${MSG}'}\n")
    return tmp_path


def test_a_build_arg_that_is_not_utf8_is_hashed_as_its_bytes(tmp_path):
    """An environment variable's bytes need not be UTF-8 (os.environ keeps them as surrogates): the hash
    takes its bytes, as buildah gets them, rather than failing with a traceback."""
    from conftest import REGLESS

    project = _small_project(tmp_path)
    env = {**os.environ, "REGLESS_CACHE_DIR": str(tmp_path / "cache")}

    def hash_with(msg: bytes) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([os.fsencode(REGLESS), b"hash", b"app"], cwd=project, capture_output=True,
                              env={**{os.fsencode(k): os.fsencode(v) for k, v in env.items()}, b"MSG": msg})

    ff, fe, text = hash_with(b"\xff"), hash_with(b"\xfe"), hash_with("é".encode())
    for p in (ff, fe, text):
        assert p.returncode == 0 and b"Traceback" not in p.stderr, p.stderr
    assert len({ff.stdout, fe.stdout, text.stdout}) == 3  # different bytes, different hashes


def test_a_closed_standard_output_is_no_traceback(tmp_path):
    """`regless hash app >&-`: Python starts with sys.stdout None; the command runs, its output goes nowhere."""
    from conftest import REGLESS

    project = _small_project(tmp_path)
    p = subprocess.run([REGLESS, "hash", "app"], cwd=project, capture_output=True,
                       env={**os.environ, "REGLESS_CACHE_DIR": str(tmp_path / "cache"), "MSG": "hi"},
                       preexec_fn=lambda: os.close(1))
    assert p.returncode == 0 and b"Traceback" not in p.stderr, p.stderr

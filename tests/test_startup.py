"""What a command imports: `regless version` and `--help` none of regless's working modules or their
libraries, a restart none of what only a failure, a build or another command needs (README
"Performance" has the timings; this holds the import lists, which do not depend on the machine)."""

from __future__ import annotations

import os
import subprocess

from conftest import REGLESS

# what `version` and `--help` must not load: the libraries and the modules of the working commands
NOT_AT_START = ("yaml", "lmdb", "tenacity", "e2b_dockerfile_utils", "xxhash", "jsonpatch", "dataclasses", "typing",
                "concurrent.futures", "subprocess", "reglessbuild.config", "reglessbuild.registry",
                "reglessbuild.builders", "reglessbuild.hashing.inputs", "reglessbuild.hashing.ignore",
                "reglessbuild.hashing.python_engine", "reglessbuild.hashing.c_engine", "reglessbuild.index",
                "reglessbuild.run",
                "reglessbuild.console", "reglessbuild.dockerfile")
# what a restart (every artifact cached) must not load: retries (tenacity), key suggestions, skaffold.yaml,
# the cache command, kaniko (logging comes with concurrent.futures). email.utils comes
# with http.client, which the direct checks use (registry/direct.py) instead of a tool process per check.
# Inputs records and previous inputs (gzip), a build's push folder and a CA's folder (tempfile), and every
# sha256/md5 of manifest bytes or skaffold's inputDigest (hashlib) only come with a build, a record or a GET;
# multi-platform artifacts or --platform bring multiplatform and manifests, --share's waits bring waiting;
# explain's snapshot only where an artifact's inputs record is new; the skaffold package only for skaffold.yaml;
# the classes of values made only on other paths: a whole plan (plan, explain, --share), a retry's notice, an
# index set aside
NOT_AT_RESTART = ("tenacity", "difflib", "jsonpatch", "reglessbuild.skaffold", "reglessbuild.explain",
                  "reglessbuild.planned", "reglessbuild.retrynotice", "reglessbuild.indexaside",
                  "reglessbuild.cache", "reglessbuild.builders.kaniko", "multiprocessing", "pickle", "platform",
                  "reglessbuild.records", "reglessbuild.previous", "gzip", "tempfile", "hashlib", "_hashlib",
                  "reglessbuild.multiplatform", "reglessbuild.manifests", "reglessbuild.waiting")


def imported(argv: list[str], **kw: object) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run regless with Python's import log (-X importtime) on; the process and the modules it imported."""
    env = {**(kw.pop("env", None) or os.environ), "PYTHONPROFILEIMPORTTIME": "1"}  # type: ignore[arg-type]
    p = subprocess.run([REGLESS, *argv], capture_output=True, text=True, env=env, timeout=300, **kw)  # type: ignore[call-overload]
    mods = {ln.rsplit("|", 1)[1].strip() for ln in p.stderr.splitlines() if ln.startswith("import time:")}
    return p, mods - {"package"}  # the log's header line


def test_version_and_help_import_none_of_the_working_modules():
    for argv in (["version"], ["--help"], ["build", "--help"]):
        p, mods = imported(argv)
        assert p.returncode == 0, p.stderr
        assert "argparse" in mods  # the log was read
        assert sorted(m for m in mods if m in NOT_AT_START or m.startswith(NOT_AT_START)) == [], argv
    p, _ = imported(["version"])
    assert p.stdout.startswith("regless ") and "hashing: " in p.stdout


def test_a_restart_imports_only_what_it_needs(demo):
    demo.build()
    p, mods = imported(["build", "--output", "json", "--default-repo", demo.repo], cwd=demo.path, env=demo.env)
    assert p.returncode == 0, p.stderr
    assert '"outcome": "built"' not in p.stdout
    assert {"yaml", "lmdb", "reglessbuild.run"} <= mods  # the log was read
    assert sorted(m for m in mods if m in NOT_AT_RESTART or m.startswith(tuple(x + "." for x in NOT_AT_RESTART))) == []


def test_version_into_a_closed_pipe_is_no_traceback():
    p = subprocess.Popen([REGLESS, "version"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()  # the reader went away before regless wrote (`regless version | head -0`)
    err = p.stderr.read().decode()
    assert p.wait(60) == 0 and "Traceback" not in err and err == ""


# what a replayed restart (replay.py) must not load either: the config's, the Dockerfiles' and the hashing's
# modules, the index's, the registry tools' adapters, http.client with the email package (http1.py)
NOT_AT_REPLAY = (*NOT_AT_RESTART, "yaml", "e2b_dockerfile_utils", "reglessbuild.config", "reglessbuild.dockerfile",
                 "reglessbuild.run", "reglessbuild.pipeline", "reglessbuild.index", "reglessbuild.registry",
                 "reglessbuild.builders", "reglessbuild.hashing.inputs", "http.client", "email",
                 "concurrent.futures", "subprocess")


def test_a_replayed_restart_imports_less_again(demo):
    import time

    demo.build()
    time.sleep(2.1)  # the files older than the racy margin (replay.RACY_NS): the next run is kept
    argv = ["build", "--output", "json", "--default-repo", demo.repo]
    env = {**demo.env, "PYTHONPROFILEIMPORTTIME": "1"}  # the replay's key takes the environment in
    imported(argv, cwd=demo.path, env=env)
    p, mods = imported(argv, cwd=demo.path, env=env)
    assert p.returncode == 0, p.stderr
    assert '"replayed": true' in p.stdout
    assert {"lmdb", "reglessbuild.replay", "reglessbuild.http1"} <= mods  # the log was read
    assert sorted(m for m in mods if m in NOT_AT_REPLAY or m.startswith(tuple(x + "." for x in NOT_AT_REPLAY))) == []


# what a build must not have imported when its `buildah build` starts, as the builder's start waits for every
# import before it: why it is built (previous, records: gzip, hashlib) runs beside the build, an inputs
# record after it, a retry's pauses (random) only after a failure, the multi-platform build's names (uuid,
# and platform with it) and a Dockerfile's temporary copy (tempfile) only where used. explain's snapshot
# only once a result or record is kept; the skaffold package (its inputDigest tags, its loader) only for a
# skaffold.yaml; the idna codec (with stringprep) only for a TLS registry's name or a name that is not ASCII;
# the modules of values a build makes only on other paths: a whole plan, a retry's notice, an index set aside
NOT_BEFORE_THE_BUILD = ("reglessbuild.previous", "reglessbuild.records", "gzip", "hashlib", "_hashlib", "uuid",
                        "platform", "tempfile", "random", "tenacity", "reglessbuild.multiplatform",
                        "reglessbuild.manifests", "reglessbuild.explain", "reglessbuild.skaffold", "encodings.idna",
                        "stringprep", "reglessbuild.planned", "reglessbuild.retrynotice", "reglessbuild.indexaside")
# run as `python -c`: an audit hook writes the modules loaded when the first `buildah build` is started, and
# the garbage collector's collections since cli.main was called
_AT_THE_BUILD = """\
import gc, json, os, sys
out = sys.argv.pop(1)
def collections():
    return sum(g["collections"] for g in gc.get_stats())
def hook(event, args):
    if event == "subprocess.Popen" and args[1] and str(args[1][0]).endswith("buildah") and "build" in args[1]:
        if not os.path.exists(out):
            with open(out, "w") as f:
                json.dump({"modules": sorted(sys.modules), "collections": collections() - before}, f)
sys.addaudithook(hook)
from reglessbuild.cli import main
before = collections()
sys.exit(main())
"""


def test_a_build_starts_its_builder_before_importing_what_only_comes_after(demo, tmp_path):
    import json
    import sys

    demo.build()
    (demo.path / "web" / "index.html").write_text("<p>changed</p>\n")
    seen = tmp_path / "modules.json"
    p = subprocess.run([sys.executable, "-c", _AT_THE_BUILD, str(seen), "build", "--output", "json",
                        "--default-repo", demo.repo], cwd=demo.path, env=demo.env, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["buildsStarted"] == 1
    at_the_build = json.loads(seen.read_text())
    mods = set(at_the_build["modules"])
    assert {"yaml", "reglessbuild.run", "reglessbuild.builders.buildah"} <= mods  # taken as the build started
    assert sorted(m for m in mods if m in NOT_BEFORE_THE_BUILD
                  or m.startswith(tuple(x + "." for x in NOT_BEFORE_THE_BUILD))) == []
    # no cyclic collections while it started (cli.main; on again once every artifact is hashed, which may take
    # one or two on the way to the spawn): with the collector on, this build made about 30 before it
    assert at_the_build["collections"] <= 2


def test_no_cyclic_collection_while_a_command_starts(monkeypatch):
    import gc

    from reglessbuild import buildcli, cli
    from reglessbuild.events import Event

    seen: list[bool] = []
    monkeypatch.setattr(cli, "_command", lambda name: lambda args, r: seen.append(gc.isenabled()) or 0)
    assert gc.isenabled()
    assert cli.main(["hash", "app"]) == 0
    assert seen == [False] and gc.isenabled()  # off for the command, as it was once it returns
    got: list[Event] = []
    gc.disable()
    try:
        emit = buildcli._collecting_once_hashed(got.append)  # type: ignore[arg-type]
        emit(Event("phase", None, "hash"))
        emit(Event("build", "a", "building a"))  # a build may start while later artifacts are hashed
        assert not gc.isenabled()
        emit(Event("phase", None, "check"))
        assert gc.isenabled()  # on once every artifact is hashed
    finally:
        gc.enable()
    assert [e.message for e in got] == ["hash", "building a", "check"]

"""The crane double speaks only what the real crane was recorded saying, and the real crane (where it is
on PATH) still says it: each case runs through the fault proxy in front of the real registry, and the
stderr is compared line by line with the recording, with times, ports and client ports put aside."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import harness
from conftest import ROOT
from faultproxy import FaultProxy, Rule

DOUBLE = ROOT / "tests" / "doubles" / "bin" / "crane"
# what the real crane was recorded saying under registry faults: shared/reference/crane-faults.md, copied
# unchanged beside the double so that CI (a clone without shared/ beside it) holds the double to it too
REFERENCE = ROOT / "tests" / "doubles"
OURS = ROOT / "tests" / "doubles" / "crane-recorded.md"


def recorded(path: Path, section: str, case: str) -> list[str]:
    """The stderr lines of one recorded call: `## section`, then `### case`, then its code block."""
    text = path.read_text()
    at = text.index(f"## {section}\n")
    block = text[text.index(f"### {case}\n", at) if case else at:]
    block = block[block.index("--- stderr:\n") + len("--- stderr:\n"):]
    return block[:block.index("```")].rstrip("\n").splitlines()


def normal(lines: list[str]) -> list[str]:
    out = []
    for ln in lines:
        ln = re.sub(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ", "", ln)
        ln = re.sub(r"127\.0\.0\.1:\d+", "HOST", ln)
        out.append(ln)
    return out


def run(tool: str, *argv: str) -> subprocess.CompletedProcess[str]:
    exe = str(DOUBLE) if tool == "double" else shutil.which("crane")
    if exe is None:
        pytest.skip("crane not on PATH")
    return subprocess.run([exe, *argv], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def demo_app(registry, base_image) -> str:
    """demo/app:v1, the image the recordings asked for."""
    ref = f"{registry.address}/demo/app:v1"
    subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
                    f"docker://{base_image.split('@')[0]}", f"docker://{ref}"], check=True)
    return ref


FAULTS = [  # (section of crane-faults.md, case, the proxy's fault, verb)
    ("every request answered: 503", "digest, --insecure", "503", "digest"),
    ("every request answered: 503", "copy, --insecure", "503", "copy"),
    ("every request answered: 502", "digest, --insecure", "502", "digest"),
    ("every request answered: 429", "digest, --insecure", "429", "digest"),
    ("every request answered: 429", "copy, --insecure", "429", "copy"),
    ("every request answered: reset", "digest, --insecure", "reset", "digest"),
]


@pytest.mark.parametrize("tool", ["double", "crane"])
@pytest.mark.parametrize("section,case,fault,verb", FAULTS, ids=[f"{f[2]}-{f[3]}" for f in FAULTS])
def test_faults_as_recorded(registry, demo_app, tool, section, case, fault, verb):
    with FaultProxy(registry.address, rules=[Rule(".", fault, times=10_000)]) as proxy:
        src = demo_app.replace(registry.address, proxy.address)
        argv = ["digest", "--insecure", src] if verb == "digest" else \
            ["copy", "--insecure", src, src.replace("demo/app:", "demo/app2:")]
        got = run(tool, *argv)
    assert got.returncode == 1 and got.stdout == ""
    assert normal(got.stderr.splitlines()) == normal(recorded(REFERENCE / "crane-faults.md", section, case))


@pytest.mark.parametrize("tool", ["double", "crane"])
def test_missing_tag_and_refused_connection_as_recorded(registry, demo_app, tool):
    missing = run(tool, "digest", "--insecure", demo_app.replace(":v1", ":nope"))
    assert missing.returncode == 1
    assert normal(missing.stderr.splitlines()) == normal(
        recorded(REFERENCE / "crane-faults.md", "not found, refused, down", "digest of a missing tag"))
    refused = run(tool, "digest", "--insecure", f"127.0.0.1:{harness.free_port()}/demo/app:v1")
    assert refused.returncode == 1
    assert normal(refused.stderr.splitlines()) == normal(
        recorded(REFERENCE / "crane-faults.md", "not found, refused, down", "digest, connection refused"))


@pytest.mark.parametrize("tool", ["double", "crane"])
@pytest.mark.parametrize("code,section", [("401", "manifests answered 401 (UNAUTHORIZED: authentication required)"),
                                          ("403", "manifests answered 403 (DENIED: requested access to the "
                                                  "resource is denied)")])
def test_refusals_as_recorded(registry, base_image, tool, code, section):
    with FaultProxy(registry.address, rules=[Rule("/manifests/", code, times=100)]) as proxy:
        got = run(tool, "digest", "--insecure", base_image.split("@")[0].replace(registry.address, proxy.address))
    assert got.returncode == 1
    assert normal(got.stderr.splitlines()) == normal(recorded(OURS, section, ""))


def test_the_double_refuses_what_was_not_recorded(registry, demo_app):
    """A 500 on the manifest alone was never recorded: the double says so instead of making a text up."""
    with FaultProxy(registry.address, rules=[Rule("/manifests/", "500", times=100)]) as proxy:
        got = run("double", "digest", "--insecure", demo_app.replace(registry.address, proxy.address))
    assert got.returncode == 99
    assert got.stderr.startswith("crane TEST DOUBLE: no output of the real crane is recorded for this case")

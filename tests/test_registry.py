"""The registry layer against a real registry: one conformance suite for every adapter whose tool is
present (skopeo here; the real crane wherever it is on PATH; crane's recorded texts through a double),
argv contracts, retries against injected faults (Retry-After included), and auth and TLS."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

import harness
from conftest import ROOT
from faultproxy import FaultProxy, Rule
from reglessbuild import retrying as retry
from reglessbuild.errors import RegistryAuthError, RegistryUnreachable
from reglessbuild.faults import TransientRegistryError
from reglessbuild.refs import parse
from reglessbuild.registry import Crane, Reliable, Skopeo
from reglessbuild.registry.crane import copy_argv as crane_copy_argv
from reglessbuild.registry.crane import digest_argv as crane_digest_argv
from reglessbuild.registry.skopeo import copy_argv, digest_argv

CRANE_DOUBLE = ROOT / "tests" / "doubles" / "bin" / "crane"
FAST = retry.Policy(deadline=3.0, initial=0.05, maximum=0.2)


def skopeo_digest(ref: str) -> str:
    out = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                         check=True, capture_output=True).stdout
    return "sha256:" + hashlib.sha256(out).hexdigest()


def make_adapter(kind: str, insecure=("127.0.0.1",), **kw):
    if kind == "skopeo":
        return Skopeo(insecure=insecure, **kw)
    if kind == "crane":
        if not shutil.which("crane"):
            pytest.skip("crane not on PATH")
        return Crane(insecure=insecure, **kw)
    return Crane(insecure=insecure, executable=str(CRANE_DOUBLE), **kw)


@pytest.fixture(params=["skopeo", "crane", "crane-double"])
def adapter(request):
    return make_adapter(request.param)


@pytest.fixture(params=["skopeo", "crane"])
def real_adapter(request):
    """The real tools only: how they retry and time out is theirs, which the double does not imitate."""
    return make_adapter(request.param)


def need_crane() -> None:
    if not shutil.which("crane"):
        pytest.skip("crane not on PATH")


# ---------------------------------------------------------------- conformance

def test_digest_of_an_image(adapter, base_image):
    ref = parse(base_image)
    assert adapter.digest(ref.bare().with_tag(ref.tag)) == ref.digest == skopeo_digest(base_image.split("@")[0])
    assert adapter.digest(ref.bare().with_digest(ref.digest)) == ref.digest


def test_digest_of_missing_tag_and_repo_is_none(adapter, registry):
    assert adapter.digest(parse(f"{registry.address}/base/busybox:nope")) is None
    assert adapter.digest(parse(f"{registry.address}/no/such/repo:x")) is None


@pytest.mark.parametrize("dst_repo", ["base/busybox", "copies/elsewhere"])
def test_copy_keeps_the_digest(adapter, base_image, registry, dst_repo):
    src = parse(base_image)
    dst = parse(f"{registry.address}/{dst_repo}:copy-{adapter.name}-{abs(hash(dst_repo)) % 1000}")
    got = Reliable(adapter, FAST).copy(src.bare().with_digest(src.digest), dst)
    assert got == src.digest == adapter.digest(dst) == skopeo_digest(str(dst))


def test_unreachable_registry_is_transient_then_unreachable(adapter):
    dead = parse(f"127.0.0.1:{harness.free_port()}/x/y:z")
    with pytest.raises(TransientRegistryError):
        adapter.digest(dead)
    with pytest.raises(RegistryUnreachable) as exc:
        Reliable(adapter, FAST).digest(dead)
    assert f"registry {dead.registry} did not answer" in str(exc.value)


def test_argv_contracts():
    ref = parse("r.example:5000/a/b:" + "c" * 32)
    assert digest_argv(ref, True) == ["skopeo", "--debug", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"]
    assert digest_argv(ref, False, "/certs") == ["skopeo", "--debug", "inspect", "--raw", "--cert-dir", "/certs",
                                                 f"docker://{ref}"]
    assert copy_argv(ref, ref.with_tag("t"), False, True, "/c") == [
        "skopeo", "--debug", "copy", "--quiet", "--all", "--preserve-digests", "--src-cert-dir", "/c", "--dest-tls-verify=false",
        f"docker://{ref}", f"docker://{ref.with_tag('t')}"]
    assert crane_digest_argv(ref, True) == ["crane", "digest", "-v", "--insecure", str(ref)]
    assert crane_copy_argv(ref, ref.with_tag("t"), False) == ["crane", "copy", "-v", str(ref), str(ref.with_tag("t"))]


def test_a_check_runs_skopeo_lean_and_a_copy_does_not(base_image, registry, tmp_path, monkeypatch):
    """A digest check is a short Go process: one thread, no collector, unless the user chose.
    A shim records the environment each real skopeo starts with."""
    log = tmp_path / "env.log"
    shim = tmp_path / "skopeo"
    shim.write_text(f'#!/bin/sh\necho "$2 ${{GOMAXPROCS:-unset}} ${{GOGC:-unset}}" >> "{log}"\n'
                    f'exec "{shutil.which("skopeo")}" "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.delenv("GOMAXPROCS", raising=False)
    monkeypatch.delenv("GOGC", raising=False)
    sk = Skopeo(insecure=("127.0.0.1",))
    src = parse(base_image)
    ref = src.bare().with_tag(src.tag)
    assert sk.digest(ref) == src.digest
    sk.copy(src.bare().with_digest(src.digest), parse(f"{registry.address}/lean/copy:t"))
    monkeypatch.setenv("GOMAXPROCS", "2")
    assert sk.digest(ref) == src.digest
    assert log.read_text().splitlines() == ["inspect 1 off", "copy unset unset", "inspect 2 off"]


def test_crane_double_speaks_cranes_contract(registry, base_image):
    ok = subprocess.run([str(CRANE_DOUBLE), "digest", base_image.split("@")[0]], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout == base_image.split("@")[1] + "\n"
    missing = subprocess.run([str(CRANE_DOUBLE), "digest", f"{registry.address}/base/busybox:nope"],
                             capture_output=True, text=True)
    assert missing.returncode == 1 and missing.stdout == ""
    assert "Error: GET http://" in missing.stderr and "MANIFEST_UNKNOWN: manifest unknown" in missing.stderr
    bad = subprocess.run([str(CRANE_DOUBLE), "digest", "--bogus", "x"], capture_output=True, text=True)
    assert bad.returncode == 99 and "TEST DOUBLE" in bad.stderr and "flag --bogus" in bad.stderr


# ---------------------------------------------------------------- faults

@pytest.fixture
def proxy(registry):
    with FaultProxy(registry.address) as p:
        yield p


def _through(proxy: FaultProxy, base_image: str):
    return parse(base_image.split("@")[0].replace(proxy.upstream, proxy.address))


@pytest.mark.parametrize("fault", ["500", "502", "503", "reset", "429"])
def test_transient_faults_are_retried(real_adapter, proxy, base_image, fault):
    proxy.rules.append(Rule(r"/manifests/", fault, times=2, retry_after=0.1 if fault == "429" else None))
    ref = _through(proxy, base_image)
    assert Reliable(real_adapter, FAST).digest(ref) == parse(base_image).digest
    assert [x[2] for x in proxy.injected()] == [fault, fault]


# how many 429s one call of each tool takes before it gives up: crane does not retry a 429 (its HEAD,
# then the GET fallback: tests/doubles/crane-recorded.md); containers/image makes 5 attempts, waiting
# as Retry-After says between them
OWN_429_ATTEMPTS = {"skopeo": 5, "crane": 2}


def _gap_after_last_fault(proxy: FaultProxy, pattern: str) -> float:
    """Seconds from the last injected fault to the next request matching `pattern` (the retry)."""
    last = max(i for i, x in enumerate(proxy.log) if x[2])
    nxt = next(i for i in range(last + 1, len(proxy.log)) if re.search(pattern, " ".join(proxy.log[i][:2])))
    return proxy.stamps[nxt] - proxy.stamps[last]


@pytest.mark.parametrize("kind", ["skopeo", "crane"])
def test_retry_after_is_the_least_wait_before_the_next_attempt(proxy, base_image, kind):
    """The tool gives up on a 429 with Retry-After: 2; regless's next attempt comes no sooner."""
    adapter = make_adapter(kind)
    proxy.rules.append(Rule(r"/manifests/", "429", times=OWN_429_ATTEMPTS[kind], retry_after=2))
    digest = Reliable(adapter, retry.Policy(deadline=30, initial=0.05, maximum=0.2)).digest(_through(proxy, base_image))
    assert digest == parse(base_image).digest
    assert len(proxy.injected()) == OWN_429_ATTEMPTS[kind]
    assert _gap_after_last_fault(proxy, r"/manifests/") >= 2.0


@pytest.mark.parametrize("kind", ["skopeo", "crane"])
def test_retry_after_past_the_deadline_ends_the_retries(proxy, base_image, kind):
    """A registry that asks for longer than is left of the deadline is not asked again: the operation
    fails within the deadline plus one attempt's timeout, having made the tool's own requests only."""
    proxy.rules.append(Rule(r"/manifests/", "429", times=100, retry_after=30))
    t0 = time.monotonic()
    with pytest.raises(RegistryUnreachable):
        Reliable(make_adapter(kind, attempt_timeout=2.0), retry.Policy(deadline=3, initial=0.05)).digest(
            _through(proxy, base_image))
    assert time.monotonic() - t0 < 3 + 2.0
    # skopeo: its first request, then it sleeps the 30 s itself until the attempt timeout stops it
    assert len([x for x in proxy.log if "/manifests/" in x[1]]) == {"skopeo": 1, "crane": 2}[kind]


def test_a_stalled_request_times_out_and_is_retried(proxy, base_image):
    proxy.stall_seconds = 20
    proxy.rules.append(Rule(r"/manifests/", "stall", times=1))
    adapter = make_adapter("skopeo", attempt_timeout=1.0)
    assert Reliable(adapter, retry.Policy(deadline=10, initial=0.05)).digest(_through(proxy, base_image)) == \
        parse(base_image).digest


def test_registry_that_stays_down_fails_in_bounded_time(adapter, proxy, base_image):
    proxy.down = True
    with pytest.raises(RegistryUnreachable) as exc:
        Reliable(adapter, retry.Policy(deadline=1.5, initial=0.05, maximum=0.2)).digest(_through(proxy, base_image))
    assert f"registry {proxy.address} did not answer" in str(exc.value)
    assert len(proxy.log) >= 2  # it was retried, and it stopped


def test_a_registry_that_recovers_is_not_abandoned(real_adapter, proxy, base_image):
    """Down (503 to everything) for 3 s, then up: the check goes on past the tool's own retries (crane's
    take about a second a call) and succeeds within the deadline."""
    proxy.down = True
    threading.Timer(3.0, lambda: setattr(proxy, "down", False)).start()
    digest = Reliable(real_adapter, retry.Policy(deadline=15, initial=0.5, maximum=4)).digest(_through(proxy, base_image))
    assert digest == parse(base_image).digest
    assert len(proxy.injected()) >= 2 and proxy.log[-1][2] == ""


@pytest.mark.parametrize("code", ["401", "403"])
def test_auth_refusal_is_not_retried(adapter, proxy, base_image, code):
    proxy.rules.append(Rule(r"/manifests/", code, times=100))
    with pytest.raises(RegistryAuthError) as exc:
        Reliable(adapter, FAST).digest(_through(proxy, base_image))
    # one call of the tool: skopeo's GET; crane's HEAD, then its GET fallback (crane-recorded.md); the
    # double does its work with skopeo
    one_call = 2 if isinstance(adapter, Crane) and adapter.executable == "crane" else 1
    assert len([x for x in proxy.log if "/manifests/" in x[1]]) == one_call
    assert "config.json" in str(exc.value) and "REGISTRY_AUTH_FILE" in str(exc.value)


def _build_through(demo, proxy, *extra: str):
    return demo.run("build", "--output", "json", "--default-repo", f"{proxy.address}/{_prefix(demo)}", *extra,
                    default_repo=False)


def _prefix(demo) -> str:
    return demo.repo.rsplit("/", 1)[1]  # the test's own repository prefix, also behind the proxy


def test_restart_completes_with_30_percent_of_requests_failing(demo, proxy, tmp_path):
    first = _build_through(demo, proxy)
    assert first.returncode == 0, first.stderr[-2000:]
    proxy.rate = 0.3
    proxy.random_faults = ("500", "502", "503", "reset", "429")
    demo.env["REGLESS_CACHE_DIR"] = str(tmp_path / "fresh")  # a fresh runner: every answer from the registry
    for _ in range(2):
        again = _build_through(demo, proxy)
        assert again.returncode == 0, again.stdout[-3000:]
        assert again.outcomes() == {"web": "cached", "tools": "cached", "app": "cached"}
        assert {a["digest"] for a in again.json()["artifacts"]} == {a["digest"] for a in first.json()["artifacts"]}
    assert len(proxy.injected()) >= 3 and demo.builds_started() == 3


def test_builds_pushes_and_retags_complete_with_30_percent_of_requests_failing(demo, proxy):
    # default settings. A push or a copy is a dozen requests or more, and buildah and skopeo retry only
    # whole operations: regless runs the push, pull or copy again, soon when the registry had answered
    # (faults.midway), never rebuilding an image that was built
    proxy.rate = 0.3
    proxy.random_faults = ("500", "502", "503", "reset")
    first = _build_through(demo, proxy)
    assert first.returncode == 0, first.stdout[-3000:]
    assert first.outcomes() == {"web": "built", "tools": "built", "app": "built"}
    for a in first.json()["artifacts"]:  # what was reported is what the registry serves
        assert skopeo_digest(a["reference"].split("@")[0].replace(proxy.address, proxy.upstream)) == a["digest"]
    cfg = demo.path / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("image: web ", "image: website "))
    second = _build_through(demo, proxy)
    assert second.returncode == 0, second.stdout[-3000:]
    assert second.outcomes() == {"website": "retagged", "tools": "cached", "app": "cached"}
    site = next(a for a in second.json()["artifacts"] if a["name"] == "website")
    web = next(a for a in first.json()["artifacts"] if a["name"] == "web")
    assert site["digest"] == web["digest"] == skopeo_digest(f"{proxy.upstream}/{_prefix(demo)}/website:latest")
    pushes = [rc for c, rc in harness.exits(demo.builds_log) if c.split()[2:3] == ["push"]]
    assert len(proxy.injected()) > 20 and pushes.count(0) == 3 and len(pushes) > 3  # faults met, pushed again
    assert demo.builds_done() == 3


def test_six_artifacts_through_30_percent_faults_with_rate_limits(make_project, proxy):
    """429s with Retry-After: 1 among 502s, 503s and resets, on 30% of requests: six builds at once, each
    pushed to its own repository, all complete; what is reported is what the registry serves behind
    the hash tag, and a restart through the same proxy finds all of it."""
    six = make_project("six")
    proxy.rate = 0.3
    proxy.random_faults = ("429", "502", "503", "reset")
    proxy.random_retry_after = 1
    first = _build_through(six, proxy)
    assert first.returncode == 0, first.stdout[-3000:]
    assert set(first.outcomes().values()) == {"built"} and len(first.outcomes()) == 6
    for a in first.json()["artifacts"]:
        assert skopeo_digest(a["reference"].split("@")[0].replace(proxy.address, proxy.upstream)) == a["digest"]
    again = _build_through(six, proxy)
    assert again.returncode == 0, again.stdout[-3000:]
    assert set(again.outcomes().values()) == {"cached"}
    assert {a["digest"] for a in again.json()["artifacts"]} == {a["digest"] for a in first.json()["artifacts"]}
    assert {"429", "502", "503", "reset"} <= {x[2] for x in proxy.injected()}


def test_a_rerun_of_buildah_waits_as_retry_after_says(make_project, proxy):
    """A push meets 429s with Retry-After: 1 until containers/image (5 tries a request) and buildah (4
    copies) give up; regless's next push comes no sooner than the Retry-After, read from buildah's
    debug log. (s1 has one layer: its upload meets every 429. No inputs record: its blobs, pushed to
    s1's repository while s1 builds, would meet some of them.)"""
    six = make_project("six")
    proxy.rules.append(Rule(r"^POST /v2/.*/s1/blobs/uploads/", "429", times=20, retry_after=1))
    res = six.run("build", "--output", "json", "s1", "--no-records", "--default-repo",
                  f"{proxy.address}/{_prefix(six)}", default_repo=False)
    assert res.returncode == 0, res.stdout[-3000:]
    assert [x[2] for x in proxy.injected()] == ["429"] * 20
    pushes = [rc for c, rc in harness.exits(six.builds_log) if c.split()[2:3] == ["push"]]
    assert pushes == [125, 0]  # buildah gave up once; regless pushed again
    assert _gap_after_last_fault(proxy, r"^GET /v2/$") >= 1.0  # the rerun's first request, a ping


def test_build_against_a_registry_that_stays_down_exits_3(demo, proxy):
    cfg = demo.path / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("insecure: [127.0.0.1]", "insecure: [127.0.0.1]\n  timeout: 2"))
    proxy.down = True
    res = _build_through(demo, proxy)
    assert res.returncode == 3 and f"registry {proxy.address} did not answer" in res.stderr


def test_build_refused_401_exits_3_saying_where_credentials_come_from(demo, proxy):
    proxy.rules.append(Rule(r"/manifests/", "401", times=1000))
    res = _build_through(demo, proxy)
    assert res.returncode == 3 and f"registry {proxy.address} refused access" in res.stderr
    assert "DOCKER_CONFIG" in res.stderr and "REGISTRY_AUTH_FILE" in res.stderr


# ---------------------------------------------------------------- auth and TLS

USER, PASSWORD = "regless-user", "pw-7f3c9e-never-printed"


@pytest.fixture(scope="module")
def secure(tmp_path_factory):
    folder = tmp_path_factory.mktemp("secure")
    cert, key, htpasswd = harness.make_tls_auth(folder, USER, PASSWORD)
    with harness.LocalRegistry(folder, tls=(cert, key), htpasswd=htpasswd) as reg:
        yield reg, cert


def _secure_project(demo, secure, *, ca: bool = True, insecure: str | None = None):
    reg, cert = secure
    cfg = demo.path / "regless.yaml"
    text = cfg.read_text().replace("insecure: [127.0.0.1]", f"insecure: [{insecure or demo.registry}]")
    if ca:
        text = text.replace("registry:\n", f"registry:\n  caFile: {cert}\n")
    cfg.write_text(text)
    return reg


def _docker_config(folder: Path, registry: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (folder / "config.json").write_text(json.dumps({"auths": {registry: {"auth": token}}}))
    return folder


def _no_secret_anywhere(demo, *outputs: str) -> None:
    for text in outputs:
        assert PASSWORD not in text
    for f in demo.cache_dir.rglob("*"):
        if f.is_file():
            assert PASSWORD.encode() not in f.read_bytes(), f


@pytest.mark.parametrize("how", ["DOCKER_CONFIG", "REGISTRY_AUTH_FILE"])
def test_build_on_a_tls_registry_with_basic_auth(demo, secure, tmp_path, how):
    reg = _secure_project(demo, secure)
    conf = _docker_config(tmp_path / "docker", reg.address)
    demo.env[how] = str(conf) if how == "DOCKER_CONFIG" else str(conf / "config.json")
    res = demo.run("build", "--output", "json", "-v", "--default-repo", f"{reg.address}/{_prefix(demo)}", default_repo=False)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.outcomes() == {"web": "built", "tools": "built", "app": "built"}
    again = demo.run("build", "--output", "json", "--default-repo", f"{reg.address}/{_prefix(demo)}", default_repo=False)
    assert again.outcomes() == {"web": "cached", "tools": "cached", "app": "cached"}
    _no_secret_anywhere(demo, res.stdout, res.stderr, again.stdout, again.stderr)


@pytest.mark.parametrize("kind", ["skopeo", "crane-double"])
def test_adapters_read_credentials_and_the_ca(secure, base_image, tmp_path, monkeypatch, kind):
    reg, cert = secure
    conf = _docker_config(tmp_path / "docker", reg.address)
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(conf / "config.json"))  # crane gets it as DOCKER_CONFIG
    adapter = make_adapter(kind, insecure=(base_image.split("/")[0],), ca_file=cert)
    dst = parse(f"{reg.address}/copied/busybox:1")
    src = parse(base_image)
    assert Reliable(adapter, FAST).copy(src.bare().with_digest(src.digest), dst) == src.digest


def test_without_credentials_the_refusal_names_the_registry(demo, secure):
    reg = _secure_project(demo, secure)
    res = demo.run("build", "--default-repo", f"{reg.address}/{_prefix(demo)}", default_repo=False)
    assert res.returncode == 3 and f"registry {reg.address} refused access" in res.stderr
    assert "config.json" in res.stderr and "Traceback" not in res.stderr


def test_without_the_ca_tls_fails_clearly(demo, secure, tmp_path):
    reg = _secure_project(demo, secure, ca=False)
    demo.env["DOCKER_CONFIG"] = str(_docker_config(tmp_path / "docker", reg.address))
    res = demo.run("build", "--default-repo", f"{reg.address}/{_prefix(demo)}", default_repo=False)
    assert res.returncode == 3 and f"TLS to registry {reg.address} failed" in res.stderr
    assert "x509" in res.stderr


def test_insecure_applies_only_to_the_registries_it_names(demo):
    cfg = demo.path / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("insecure: [127.0.0.1]", "insecure: [127.0.0.1:1]"))
    res = demo.run("build")
    # skopeo's check fails; crane's passes (it falls back to plain http for loopback) and buildah's push
    # is refused: either way exit 3, with the hint where the user reads it
    said = res.stdout + res.stderr
    assert res.returncode == 3 and "server gave HTTP response to HTTPS client" in said
    assert f"registry.insecure: [{demo.registry}]" in said

"""Checks made over HTTP in regless's own process (registry/direct.py), against the real registry, the
fault proxy, a TLS registry with basic auth, and a registry double for answers the real one never gives:
every answer is the one the tool gives, and anything not plain goes to the tool."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

import harness
from faultproxy import FaultProxy, Rule
from reglessbuild import plainauth, wiring
from reglessbuild import retrying as retry
from reglessbuild.errors import RegistryAuthError
from reglessbuild.refs import ImageRef, parse
from reglessbuild.registry import Reliable, Skopeo, direct, tls
from reglessbuild.settings import RegistrySettings

FAST = retry.Policy(deadline=3.0, initial=0.05, maximum=0.2)
TOOL_DIGEST = "sha256:" + "7" * 64
USER, PASSWORD = "direct-user", "pw-direct-never-printed"


class ToolFake:
    """A registry tool fake: it answers every check with TOOL_DIGEST and records the references, so a
    test sees which checks went to the tool."""

    name = "fake"

    def __init__(self) -> None:
        self.asked: list[str] = []

    def digest(self, ref: ImageRef) -> str | None:
        self.asked.append(str(ref))
        return TOOL_DIGEST

    def manifest(self, ref: ImageRef) -> bytes | None:
        self.asked.append(str(ref))
        return b"from the tool"

    def copy(self, src: ImageRef, dst: ImageRef) -> None:  # pragma: no cover - no copies here
        raise AssertionError("no copy expected")


def raw(ref: str, *flags: str) -> bytes:
    return subprocess.run(["skopeo", "inspect", "--raw", *(flags or ("--tls-verify=false",)), f"docker://{ref}"],
                          check=True, capture_output=True).stdout


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment with a home of its own: no credentials, proxies or certificates of the machine's."""
    return {"HOME": str(tmp_path / "home"), **extra}


def test_checks_and_manifests_are_answered_directly(base_image, registry, tmp_path):
    ref = parse(base_image)
    d = direct.Direct(ToolFake(), insecure=("127.0.0.1",), env=clean_env(tmp_path))
    tagged = ref.bare().with_tag(ref.tag)
    assert d.digest(tagged) == ref.digest
    assert d.digest(ref.bare().with_digest(ref.digest)) == ref.digest
    assert d.digest(parse(f"{registry.address}/base/busybox:nope")) is None
    assert d.digest(parse(f"{registry.address}/no/such/repo:x")) is None
    assert d.digest(ref.bare().with_digest("sha256:" + "0" * 64)) is None
    body = d.manifest(tagged)
    assert body == raw(str(tagged)) and "sha256:" + hashlib.sha256(body).hexdigest() == ref.digest
    assert d.manifest(parse(f"{registry.address}/base/busybox:nope")) is None
    assert (d.direct, d.fallbacks, d.inner.asked) == (7, 0, [])  # type: ignore[attr-defined]
    assert d.host_state(registry.address) == (True, "")


def test_without_insecure_a_plain_http_registry_goes_to_the_tool(base_image, tmp_path):
    """https only, as the tools do for a registry not in registry.insecure: the TLS handshake fails."""
    ref = parse(base_image)
    d = direct.Direct(ToolFake(), env=clean_env(tmp_path))
    assert d.digest(ref.bare().with_tag(ref.tag)) == TOOL_DIGEST
    usable, why = d.host_state(ref.registry)
    assert not usable and why.startswith("https: ")


@pytest.fixture
def proxy(registry) -> Iterator[FaultProxy]:
    with FaultProxy(registry.address) as p:
        yield p


@pytest.mark.parametrize("fault", ["500", "503", "429", "reset", "401", "403"])
def test_a_fault_goes_to_the_tool_which_retries_or_refuses(proxy, base_image, tmp_path, fault):
    ref = parse(base_image.split("@")[0].replace(proxy.upstream, proxy.address))
    refused = fault in ("401", "403")
    proxy.rules.append(Rule(r"/manifests/" if refused else r"^HEAD /v2/.*/manifests/", fault, times=100 if refused else 1,
                            retry_after=0.1 if fault == "429" else None))
    d = direct.Direct(Skopeo(insecure=("127.0.0.1",)), insecure=("127.0.0.1",), env=clean_env(tmp_path))
    if refused:
        with pytest.raises(RegistryAuthError):
            Reliable(d, FAST).digest(ref)  # the tool's refusal, as without the direct check
    else:
        assert Reliable(d, FAST).digest(ref) == parse(base_image).digest
    # a reset kept-alive connection is tried once more on a new one (the registry may have closed it)
    assert (d.direct, d.fallbacks) == ((1, 0) if fault == "reset" else (0, 1))
    assert ("HEAD", f"/v2/{ref.repository}/manifests/{ref.tag}") in [x[:2] for x in proxy.log]


def test_a_registry_that_is_down_at_the_ping_goes_to_the_tool(proxy, base_image, tmp_path):
    ref = parse(base_image.split("@")[0].replace(proxy.upstream, proxy.address))
    proxy.rules.append(Rule(r"^GET /v2/$", "503", times=1))
    d = direct.Direct(ToolFake(), insecure=("127.0.0.1",), env=clean_env(tmp_path))
    assert d.digest(ref) == TOOL_DIGEST and d.digest(ref) == TOOL_DIGEST  # the run's checks: all the tool's
    assert d.host_state(proxy.address) == (False, "its API root answered 503")


def test_kept_alive_connections_carry_the_checks(proxy, base_image, tmp_path):
    """One ping, then a request per check on the same connection (the proxy sees each request once)."""
    ref = parse(base_image.split("@")[0].replace(proxy.upstream, proxy.address))
    d = direct.Direct(ToolFake(), insecure=("127.0.0.1",), env=clean_env(tmp_path))
    for _ in range(5):
        assert d.digest(ref) == parse(base_image).digest
    assert [x[0] for x in proxy.log if x[0] in ("GET", "HEAD")] == ["GET"] + ["HEAD"] * 5


# ---------------------------------------------------------------- credentials and TLS

@pytest.fixture(scope="module")
def secure(tmp_path_factory, base_image):
    folder = tmp_path_factory.mktemp("direct-secure")
    cert, key, htpasswd = harness.make_tls_auth(folder, USER, PASSWORD)
    with harness.LocalRegistry(folder, tls=(cert, key), htpasswd=htpasswd) as reg:
        src = parse(base_image)
        dst = parse(f"{reg.address}/copied/busybox:1")
        subprocess.run(["skopeo", "copy", "--src-tls-verify=false", "--dest-cert-dir", tls.cert_dir(cert), "--dest-creds",
                        f"{USER}:{PASSWORD}", f"docker://{src.bare().with_digest(src.digest)}", f"docker://{dst}"],
                       check=True, capture_output=True)
        yield reg, cert, dst, src.digest


def docker_config(folder: Path, registry: str, **entry: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    entry = entry or {"auth": base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
    (folder / "config.json").write_text(json.dumps({"auths": {registry: entry}}))
    return folder


def test_plain_basic_credentials_over_tls_with_the_ca(secure, tmp_path):
    reg, cert, dst, digest = secure
    env = clean_env(tmp_path, DOCKER_CONFIG=str(docker_config(tmp_path / "docker", reg.address)))
    d = direct.Direct(ToolFake(), ca_file=cert, env=env)
    assert d.digest(dst) == digest and d.digest(dst.with_tag("nope")) is None
    assert d.fallbacks == 0 and d.host_state(reg.address) == (True, "")


def test_insecure_tls_registry_is_reached_without_verifying(secure, tmp_path):
    reg, _, dst, digest = secure
    env = clean_env(tmp_path, REGISTRY_AUTH_FILE=str(docker_config(tmp_path / "docker", reg.address) / "config.json"))
    d = direct.Direct(ToolFake(), insecure=("127.0.0.1",), env=env)
    assert d.digest(dst) == digest and d.fallbacks == 0


@pytest.mark.parametrize("setup", ["none", "helper", "token", "no-ca", "differing"])
def test_credentials_or_tls_it_does_not_plainly_handle_go_to_the_tool(secure, tmp_path, setup):
    reg, cert, dst, _ = secure
    env = clean_env(tmp_path)
    if setup == "helper":
        (tmp_path / "docker").mkdir()
        (tmp_path / "docker" / "config.json").write_text(json.dumps({"credHelpers": {reg.address: "secret"}}))
        env["DOCKER_CONFIG"] = str(tmp_path / "docker")
    elif setup == "token":
        env["DOCKER_CONFIG"] = str(docker_config(tmp_path / "docker", reg.address, identitytoken="abc"))
    elif setup in ("no-ca", "differing"):
        env["DOCKER_CONFIG"] = str(docker_config(tmp_path / "docker", reg.address))
    if setup == "differing":
        other = docker_config(tmp_path / "other", reg.address, username=USER, password="another")
        env["REGISTRY_AUTH_FILE"] = str(other / "config.json")
    d = direct.Direct(ToolFake(), ca_file=None if setup == "no-ca" else cert, env=env)
    assert d.digest(dst) == TOOL_DIGEST and d.direct == 0
    assert d.host_state(reg.address)[0] is False


def test_a_proxy_certs_d_or_docker_hub_leaves_it_to_the_tool(tmp_path):
    home = tmp_path / "home"
    (home / ".config" / "containers" / "certs.d" / "r.example:5000").mkdir(parents=True)
    env = {"HOME": str(home)}
    assert "certificates" in plainauth.unhandled_setup("r.example:5000", env, tool="crane")
    assert plainauth.unhandled_setup("other.example", env, tool="crane") == ""
    assert "proxy" in plainauth.unhandled_setup("other.example", {**env, "HTTPS_PROXY": "http://p:3128"}, tool="crane")
    assert plainauth.unhandled_setup("127.0.0.1:5000", {**env, "https_proxy": "http://p:3128"}, tool="crane") == ""
    assert "Docker Hub" in plainauth.unhandled_setup("docker.io", env, tool="skopeo")
    conf = tmp_path / "registries.conf"
    conf.write_text('[[registry]]\nlocation = "other.example"\ninsecure = true\n')
    assert "names it" in plainauth.unhandled_setup("other.example", {**env, "CONTAINERS_REGISTRIES_CONF": str(conf)},
                                                    tool="skopeo")


# ---------------------------------------------------------------- answers the real registry never gives

class DoubleHandler(BaseHTTPRequestHandler):
    """A registry double: the API root answers 200, every manifest 200 with the headers of `ANSWER`."""

    protocol_version = "HTTP/1.1"
    ANSWER: ClassVar[dict[str, str]] = {}

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        for k, v in ({} if self.path == "/v2/" else self.ANSWER).items():
            self.send_header(k, v)
        self.end_headers()

    do_HEAD = do_GET

    def log_message(self, *_: object) -> None:
        pass


@pytest.mark.parametrize("answer", [
    {"Content-Type": direct.MODERN[0]},  # no digest
    {"Content-Type": direct.MODERN[0], "Docker-Content-Digest": "sha256:short"},
    {"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws",
     "Docker-Content-Digest": "sha256:" + "1" * 64},
    {"Content-Type": "text/html", "Docker-Content-Digest": "sha256:" + "1" * 64},
])
def test_a_200_that_is_not_plainly_a_manifest_goes_to_the_tool(answer, tmp_path):
    DoubleHandler.ANSWER = answer
    server = ThreadingHTTPServer(("127.0.0.1", 0), DoubleHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        address = f"127.0.0.1:{server.server_address[1]}"
        d = direct.Direct(ToolFake(), insecure=("127.0.0.1",), env=clean_env(tmp_path))
        assert d.digest(parse(f"{address}/a/b:t")) == TOOL_DIGEST
        assert d.manifest(parse(f"{address}/a/b:t")) == b"from the tool"
        assert d.host_state(address) == (True, "") and d.fallbacks == 2
    finally:
        server.shutdown()


def test_a_wrong_digest_in_the_header_goes_to_the_tool(tmp_path):
    DoubleHandler.ANSWER = {"Content-Type": direct.MODERN[2], "Docker-Content-Digest": "sha256:" + "1" * 64}
    server = ThreadingHTTPServer(("127.0.0.1", 0), DoubleHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        address = f"127.0.0.1:{server.server_address[1]}"
        d = direct.Direct(ToolFake(), insecure=("127.0.0.1",), env=clean_env(tmp_path))
        assert d.digest(parse(f"{address}/a/b@sha256:{'2' * 64}")) == TOOL_DIGEST  # not the digest asked for
        assert d.manifest(parse(f"{address}/a/b:t")) == b"from the tool"  # the bytes do not hash to it
        assert d.fallbacks == 2
    finally:
        server.shutdown()


# ---------------------------------------------------------------- wiring and the restart

def test_the_env_turns_it_off(monkeypatch):
    assert direct.enabled({}) and not direct.enabled({"REGLESS_DIRECT_CHECKS": "0"})
    assert not direct.enabled({"REGLESS_DIRECT_CHECKS": "off"})
    reg, _ = wiring.reliable(RegistrySettings(tool="skopeo"), ("127.0.0.1",), lambda e: None)
    assert isinstance(reg.inner, direct.Direct) and reg.name == "skopeo"
    monkeypatch.setenv("REGLESS_DIRECT_CHECKS", "0")
    reg, _ = wiring.reliable(RegistrySettings(tool="skopeo"), ("127.0.0.1",), lambda e: None)
    assert isinstance(reg.inner, Skopeo)


def test_a_restart_starts_no_tool_process_for_its_checks(demo, tmp_path):
    cfg = demo.path / "regless.yaml"
    cfg.write_text(cfg.read_text().replace("registry:\n", "registry:\n  tool: skopeo\n", 1))  # crane on PATH too
    first = demo.build()
    log = harness.counting_shim(tmp_path / "skopeo-shim", "skopeo")
    demo.env["PATH"] = f"{tmp_path / 'skopeo-shim'}:{demo.env['PATH']}"
    demo.env["REGLESS_CACHE_DIR"] = str(tmp_path / "fresh")  # a fresh runner: every answer from the registry
    again = demo.build()
    assert set(again.outcomes().values()) == {"cached"}
    assert {a["digest"] for a in again.json()["artifacts"]} == {a["digest"] for a in first.json()["artifacts"]}
    assert [c for c in harness.calls(log) if " inspect " in f" {c} "] == []
    demo.env["REGLESS_DIRECT_CHECKS"] = "0"
    demo.env["REGLESS_CACHE_DIR"] = str(tmp_path / "fresh2")
    assert set(demo.build().outcomes().values()) == {"cached"}
    assert len([c for c in harness.calls(log) if " inspect " in f" {c} "]) >= 3  # one per artifact at least

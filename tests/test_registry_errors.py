"""Classification of crane's and skopeo's failures, from their real stderr texts."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence

import pytest
import tenacity

from reglessbuild import retrying as retry
from reglessbuild.errors import RegistryAuthError, RegistryError, RegistryUnreachable
from reglessbuild.faults import Fault, TransientRegistryError, classify, last_error_line, midway, raise_for, retry_after
from reglessbuild.proc import Completed
from reglessbuild.refs import parse
from reglessbuild.registry import Reliable, Skopeo
from reglessbuild.retrying import Policy

CASES = [
    # skopeo 1.9.3, as printed here
    ('time="2026-11-28T17:58:47Z" level=fatal msg="Error parsing image name \\"docker://127.0.0.1:5901/t/run:1\\": '
     'reading manifest 1 in 127.0.0.1:5901/t/run: manifest unknown: manifest unknown"', Fault.NOT_FOUND),
    ('time="2026-11-28T18:20:45Z" level=fatal msg="Error parsing image name \\"docker://127.0.0.1:1/x/web:a\\": '
     'pinging container registry 127.0.0.1:1: Get \\"http://127.0.0.1:1/v2/\\": dial tcp 127.0.0.1:1: connect: '
     'connection refused"', Fault.TRANSIENT),
    ('level=fatal msg="Error parsing image name \\"docker://r/a:b\\": reading manifest b in r/a: '
     'unauthorized: authentication required"', Fault.AUTH),
    ('level=fatal msg="Error parsing image name \\"docker://r/a:b\\": reading manifest b in r/a: '
     'received unexpected HTTP status: 503 Service Unavailable"', Fault.TRANSIENT),
    ('level=fatal msg="pinging container registry r: Get \\"https://r/v2/\\": x509: certificate signed by unknown '
     'authority"', Fault.TLS),
    ('level=fatal msg="pinging container registry r: Get \\"https://r/v2/\\": http: server gave HTTP response to '
     'HTTPS client"', Fault.TLS),
    # crane v0.20.2 (shared/reference/crane-cli.md)
    ("2026/11/28 17:22:30 HEAD request failed, falling back on GET: HEAD http://127.0.0.1:5077/v2/demo/app/manifests/"
     "nope: unexpected status code 404 Not Found (HEAD responses have no body, use GET for details)\n"
     "Error: GET http://127.0.0.1:5077/v2/demo/app/manifests/nope: MANIFEST_UNKNOWN: manifest unknown; "
     "map[Tag:nope]", Fault.NOT_FOUND),
    ("Error: reading tags for 127.0.0.1:5077/demo/none: GET http://127.0.0.1:5077/v2/demo/none/tags/list?n=1000: "
     "NAME_UNKNOWN: repository name not known to registry; map[name:demo/none]", Fault.NOT_FOUND),
    ('Error: Get "https://127.0.0.1:5079/v2/": dial tcp 127.0.0.1:5079: connect: connection refused; '
     'Get "http://127.0.0.1:5079/v2/": dial tcp 127.0.0.1:5079: connect: connection refused', Fault.TRANSIENT),
    ("Error: GET http://r/v2/a/manifests/b: UNAUTHORIZED: authentication required; [map[Action:pull]]", Fault.AUTH),
    ("Error: GET http://r/v2/a/manifests/b: DENIED: requested access to the resource is denied", Fault.AUTH),
    ("Error: GET http://r/v2/a/manifests/b: TOOMANYREQUESTS: rate limited", Fault.TRANSIENT),
    ("Error: GET http://r/v2/a/manifests/b: unexpected status code 502 Bad Gateway", Fault.TRANSIENT),
    ('level=fatal msg="Error parsing image name \\"docker://r/a:b\\": getting username and password: 1 error '
     'occurred:\\n\\t* reading JSON file \\"/run/containers/1002/auth.json\\": open /run/containers/1002/auth.json: '
     'permission denied\\n\\n"', Fault.PERMANENT),
    ('level=fatal msg="copying: trying to reuse blob: denied: requested access to the resource is denied"', Fault.AUTH),
    ("Error: parsing reference \"BAD//ref:v1\": could not parse reference: BAD//ref:v1", Fault.PERMANENT),
]

# crane v0.20.2 through a fault proxy, verbatim from shared/reference/crane-faults.md: the whole stderr,
# the joined HTTPS-then-HTTP errors read by their plain-HTTP attempt (and `midway`: did the registry
# answer its ping before the fault?)
_J = 'Get "https://127.0.0.1:{p}/v2/": http: server gave HTTP response to HTTPS client; '
CRANE_FAULTS = [
    ("every request answered: 503, digest",
     "2026/12/01 20:21:31 retrying GET http://127.0.0.1:45125/v2/: UNAVAILABLE: injected\n" * 3
     + "2026/12/01 20:21:31 HEAD request failed, falling back on GET: " + _J.format(p=45125)
     + "GET http://127.0.0.1:45125/v2/: unexpected status code 503 Service Unavailable\n"
     + "2026/12/01 20:21:31 retrying GET http://127.0.0.1:45125/v2/: UNAVAILABLE: injected\n" * 3
     + "Error: " + _J.format(p=45125) + "GET http://127.0.0.1:45125/v2/: unexpected status code 503 Service Unavailable",
     Fault.TRANSIENT, False),
    ("every request answered: 502, copy",
     "2026/12/01 20:21:36 Copying from 127.0.0.1:35661/demo/app:v1 to 127.0.0.1:35661/demo/app2:v1\n"
     + "2026/12/01 20:21:36 retrying GET http://127.0.0.1:35661/v2/: UNAVAILABLE: injected\n" * 3
     + 'Error: fetching "127.0.0.1:35661/demo/app:v1": ' + _J.format(p=35661)
     + "GET http://127.0.0.1:35661/v2/: unexpected status code 502 Bad Gateway", Fault.TRANSIENT, False),
    ("every request answered: 429, digest",
     "2026/12/01 20:21:38 HEAD request failed, falling back on GET: " + _J.format(p=38649)
     + "GET http://127.0.0.1:38649/v2/: UNAVAILABLE: injected\n"
     + "Error: " + _J.format(p=38649) + "GET http://127.0.0.1:38649/v2/: UNAVAILABLE: injected", Fault.TRANSIENT, False),
    ("every request answered: reset, digest",
     "2026/12/01 20:21:39 retrying read tcp 127.0.0.1:44896->127.0.0.1:33975: read: connection reset by peer\n"
     + "Error: " + _J.format(p=33975) + 'Get "http://127.0.0.1:33975/v2/": read tcp 127.0.0.1:44958->127.0.0.1:33975: '
     "read: connection reset by peer", Fault.TRANSIENT, False),
    ("every request answered: stall (crane waits; regless's attempt timeout ends it)",
     "2026/12/01 20:22:22 retrying EOF\nregless: timed out after 30.0 s", Fault.TRANSIENT, False),
    ("half of the requests fail, copy try 2",
     "2026/12/01 20:24:44 Copying from 127.0.0.1:45051/demo/app:v1 to 127.0.0.1:45051/demo/copy2:v1\n"
     "2026/12/01 20:24:45 retrying read tcp 127.0.0.1:45480->127.0.0.1:45051: read: connection reset by peer\n"
     'Error: fetching "127.0.0.1:45051/demo/app:v1": Get "http://127.0.0.1:45051/v2/demo/app/manifests/v1": '
     "read tcp 127.0.0.1:45480->127.0.0.1:45051: read: connection reset by peer", Fault.TRANSIENT, True),
    ("half of the requests fail, copy try 3",
     "2026/12/01 20:24:46 retrying HEAD http://127.0.0.1:45051/v2/demo/copy3/manifests/v1: unexpected status code "
     "502 Bad Gateway (HEAD responses have no body, use GET for details)\n"
     "Error: HEAD http://127.0.0.1:45051/v2/demo/copy3/manifests/v1: unexpected status code 502 Bad Gateway "
     "(HEAD responses have no body, use GET for details)", Fault.TRANSIENT, True),
    ("not found: digest of a missing repo",
     "2026/12/01 20:24:48 HEAD request failed, falling back on GET: HEAD http://127.0.0.1:50449/v2/demo/none/manifests/"
     "nope: unexpected status code 404 Not Found (HEAD responses have no body, use GET for details)\n"
     "Error: GET http://127.0.0.1:50449/v2/demo/none/manifests/nope: MANIFEST_UNKNOWN: manifest unknown; map[Tag:nope]",
     Fault.NOT_FOUND, False),
    ("digest, connection refused",
     'Error: Get "https://127.0.0.1:42999/v2/": dial tcp 127.0.0.1:42999: connect: connection refused; '
     'Get "http://127.0.0.1:42999/v2/": dial tcp 127.0.0.1:42999: connect: connection refused', Fault.TRANSIENT, False),
    ("digest, no such host",
     'Error: Get "https://no-such-host.invalid/v2/": dial tcp: lookup no-such-host.invalid on 10.255.255.53:53: '
     "no such host", Fault.PERMANENT, False),
    ("plain-http registry on a non-loopback name without --insecure (crane-cli.md)",
     'Error: Get "https://127.0.0.2:5080/v2/": http: server gave HTTP response to HTTPS client', Fault.TLS, False),
    # tests/doubles/crane-recorded.md
    ("a TLS registry whose CA crane does not trust",
     'Error: Get "https://127.0.0.1:46751/v2/": x509: certificate signed by unknown authority; GET '
     "http://127.0.0.1:46751/v2/: unexpected status code 400 Bad Request: Client sent an HTTP request to an HTTPS "
     "server.", Fault.TLS, False),
    ("manifests answered 403",
     "Error: GET http://127.0.0.1:35813/v2/base/busybox/manifests/stable: DENIED: requested access to the resource "
     "is denied", Fault.AUTH, False),
]


@pytest.mark.parametrize("case,stderr,fault,answered", CRANE_FAULTS, ids=[c[0] for c in CRANE_FAULTS])
def test_classify_cranes_recorded_faults(case: str, stderr: str, fault: Fault, answered: bool) -> None:
    assert classify(stderr) is fault
    assert midway(stderr) is answered


def test_a_joined_error_is_reported_by_the_cause_that_tells():
    with pytest.raises(TransientRegistryError) as down:
        raise_for(CRANE_FAULTS[0][1], registry="127.0.0.1:45125", action="digest x")
    assert str(down.value) == "digest x: GET http://127.0.0.1:45125/v2/: unexpected status code 503 Service Unavailable"
    with pytest.raises(RegistryError) as tls:
        raise_for(CRANE_FAULTS[-2][1], registry="127.0.0.1:46751", action="digest x")
    assert "x509: certificate signed by unknown authority" in str(tls.value)


CRANE_V_429 = """2026/12/01 21:03:20 <-- 429 http://127.0.0.1:41759/v2/base/busybox/manifests/stable (220.338µs)
2026/12/01 21:03:20 HTTP/1.1 429 Too Many Requests
Content-Length: 73
Content-Type: application/json; charset=utf-8
Date: Tue, 01 Dec 2026 21:03:20 GMT
Retry-After: 2
Server: Python/3.11 aiohttp/3.14.5

Error: GET http://127.0.0.1:41759/v2/base/busybox/manifests/stable: TOOMANYREQUESTS: too many requests"""
SKOPEO_DEBUG_429 = ('time="2026-12-01T21:03:27Z" level=debug msg="GET http://127.0.0.1:38941/v2/base/busybox/manifests/'
                    'stable"\ntime="2026-12-01T21:03:27Z" level=debug msg="Detected \'Retry-After\' header \\"1\\""\n'
                    'time="2026-12-01T21:03:31Z" level=fatal msg="Error parsing image name \\"docker://127.0.0.1:38941/'
                    'base/busybox:stable\\": reading manifest stable in 127.0.0.1:38941/base/busybox: toomanyrequests"')


def test_retry_after_is_read_from_the_tools_logs():
    assert retry_after(CRANE_V_429) == 2.0
    assert retry_after(SKOPEO_DEBUG_429) == 1.0
    assert retry_after("Retry-After: Tue, 01 Dec 2026 21:03:30 GMT", now=1_796_158_990.0) == 20.0
    assert retry_after("Retry-After: soon") is None
    assert retry_after(CASES[3][0]) is None
    with pytest.raises(TransientRegistryError) as exc:
        raise_for(SKOPEO_DEBUG_429, registry="r", action="inspect", log=SKOPEO_DEBUG_429)
    assert exc.value.retry_after == 1.0 and classify(SKOPEO_DEBUG_429) is Fault.TRANSIENT


def test_the_wait_is_at_least_retry_after_within_the_deadline():
    policy = Policy(deadline=10.0, initial=0.5, maximum=4.0, soon=0.25)
    wait = retry.wait(policy, lambda exc: exc.midway)  # type: ignore[attr-defined]
    asked = TransientRegistryError("manifest: 429", registry="r", midway=True, retry_after=3.0)
    state = _failed(asked)
    assert wait(state) >= 3.0
    late = _failed(TransientRegistryError("429", registry="r", retry_after=60.0))
    late.start_time -= 8.0  # 8 s of the 10 s gone: the wait is what is left, so no attempt follows
    assert 1.9 <= wait(late) <= 2.01


@pytest.mark.parametrize("stderr,fault", CASES)
def test_classify(stderr: str, fault: Fault) -> None:
    assert classify(stderr) is fault


def test_raise_for_maps_faults_to_errors():
    assert raise_for(CASES[0][0], registry="r", action="inspect") is None
    with pytest.raises(RegistryAuthError) as auth:
        raise_for(CASES[2][0], registry="r", action="inspect")
    assert "config.json" in str(auth.value) and "REGISTRY_AUTH_FILE" in str(auth.value)
    with pytest.raises(TransientRegistryError):
        raise_for(CASES[3][0], registry="r", action="inspect")
    with pytest.raises(RegistryError) as tls:
        raise_for(CASES[5][0], registry="r", action="inspect")
    assert "registry.insecure" in str(tls.value)


def test_last_error_line_strips_log_prefixes():
    assert last_error_line(CASES[0][0]).startswith('Error parsing image name "docker://127.0.0.1:5901/t/run:1"')
    assert last_error_line(CASES[6][0]).startswith("GET http://127.0.0.1:5077")


# the last lines of buildah 1.28 and skopeo 1.9.3 failures seen here through the fault proxy
_PUSH = 'Error: pushing image "127.0.0.1:39623/t/web:45d5" to "docker://127.0.0.1:40501/pf/web:t": '
MIDWAY = [
    (_PUSH + "writing blob: initiating layer upload to /v2/t/app/blobs/uploads/ in 127.0.0.1:35287: received "
     "unexpected HTTP status: 500 Internal Server Error", True),
    (_PUSH + "trying to reuse blob sha256:62ae at destination: failed to read from destination repository t/app: "
     "502 (Bad Gateway)", True),
    (_PUSH + "writing manifest: uploading manifest abbc to 127.0.0.1:35287/t/app: received unexpected HTTP status: "
     "500 Internal Server Error", True),
    (_PUSH + 'writing blob: Patch "http://127.0.0.1:39985/v2/t/app/blobs/uploads/4a8e": EOF', True),
    (CASES[3][0], True),  # skopeo: a 503 on the manifest, after the registry answered its ping
    # at first contact: the registry may be down
    (_PUSH + "trying to reuse blob sha256:2fa9 at destination: pinging container registry 127.0.0.1:40501: "
     "invalid status code from registry 503 (Service Unavailable)", False),
    ('time="2026-11-28T22:33:11Z" level=fatal msg="Error parsing image name \\"docker://127.0.0.1:46219/pf/web:t\\": '
     'pinging container registry 127.0.0.1:46219: Get \\"http://127.0.0.1:46219/v2/\\": EOF"', False),
    (CASES[1][0], False),  # connection refused
    ("Error: GET http://r/v2/a/manifests/b: TOOMANYREQUESTS: rate limited", False),  # asks for patience
    (_PUSH + 'writing blob: Patch "http://r/v2/t/blobs/uploads/4a": net/http: timeout awaiting response headers',
     False),
    (CASES[2][0], False),  # not transient at all
    # earlier lines are buildah's own retries; only the last one counts
    ('level=warning msg="Failed, retrying in 100ms ... (1/3). Error: pinging container registry r: EOF"\n'
     + _PUSH + "writing manifest: received unexpected HTTP status: 502 Bad Gateway", True),
]


@pytest.mark.parametrize("stderr,expected", MIDWAY)
def test_midway_tells_a_fault_after_the_registry_answered(stderr: str, expected: bool) -> None:
    assert midway(stderr) is expected
    with pytest.raises(TransientRegistryError if classify(stderr) is Fault.TRANSIENT else RegistryError) as exc:
        raise_for(stderr, registry="r", action="push")
    assert getattr(exc.value, "midway", False) is expected


def _failed(exc: BaseException) -> tenacity.RetryCallState:
    state = tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]
    state.set_exception((type(exc), exc, None))
    return state


def test_wait_is_short_after_a_fault_midway_and_backs_off_over_a_streak_of_others() -> None:
    policy = Policy(initial=0.5, maximum=4.0, soon=0.25)
    wait = retry.wait(policy, lambda exc: exc.midway)  # type: ignore[attr-defined]
    down = _failed(TransientRegistryError("pinging: 503", registry="r"))
    answered = _failed(TransientRegistryError("manifest: 502", registry="r", midway=True))
    streak = [wait(down) for _ in range(5)]
    assert 0.5 <= streak[0] <= 1.0 and 1.0 <= streak[1] <= 1.5 and 2.0 <= streak[2] <= 2.5
    assert streak[3] == streak[4] == 4.0
    assert all(0 <= wait(answered) <= 0.25 for _ in range(20))
    assert 0.5 <= wait(down) <= 1.0  # the registry answered in between: the streak starts again


class _FlakySource:
    """An in-memory adapter (a fake, no tool's texts beyond a short cause): the source's check fails
    transiently `digest_faults` times, every copy fails transiently; the start of each call is kept."""

    name = "fake"

    def __init__(self, digest_faults: int) -> None:
        self.digest_faults = digest_faults
        self.starts: list[tuple[str, float]] = []

    def digest(self, ref: object) -> str | None:
        self.starts.append(("digest", time.monotonic()))
        if self.digest_faults:
            self.digest_faults -= 1
            raise TransientRegistryError("manifest: 503 Service Unavailable", registry="r")
        return "sha256:" + "a" * 64

    def copy(self, src: object, dst: object) -> None:
        self.starts.append(("copy", time.monotonic()))
        raise TransientRegistryError("writing manifest: 502 Bad Gateway", registry="r", midway=True)


def test_a_retag_is_one_operation_under_one_deadline() -> None:
    """Reliable.copy's check of the source, copy and check of the copy share registry.timeout: no copy
    attempt starts past the deadline counted from the source's first check (each call had its own
    deadline before, and a retag could retry for three of them), and the notices count from there."""
    adapter = _FlakySource(digest_faults=3)
    reg = Reliable(adapter, Policy(deadline=1.0, initial=0.1, maximum=0.2, soon=0.05))  # type: ignore[arg-type]
    notices: list[retry.Notice] = []
    reg.on_retry = notices.append
    with pytest.raises(RegistryUnreachable):
        reg.copy(parse("r/a:1"), parse("r/b:1"))
    first = adapter.starts[0][1]
    copies = [t for kind, t in adapter.starts if kind == "copy"]
    assert copies and copies[0] - first >= 0.2  # the source's three faults came first
    assert all(t - first < 1.0 for t in copies)
    assert all(n.deadline == 1.0 for n in notices)
    copy_notices = notices[3:]
    assert copy_notices and copy_notices[0].elapsed >= 0.2  # counted from the operation's start


class _RecordedProcesses:
    """The subprocess seam (proc.Processes) answering skopeo's recorded output in turn: a fake of the
    process runner, not of skopeo (the texts are CASES' above, as skopeo 1.9.3 printed them)."""

    def __init__(self, answers: list[tuple[int, bytes, str]]) -> None:
        self.answers = answers
        self.argvs: list[list[str]] = []

    def run(self, argv: Sequence[str], *, env: dict[str, str] | None = None, timeout: float | None = None,
            install_hint: str = "") -> Completed:
        self.argvs.append(list(argv))
        code, out, err = self.answers.pop(0)
        return Completed(tuple(argv), code, out, tuple(err.splitlines()), err)

    def stream(self, argv: Sequence[str], on_line: Callable[[str], None], *, env: dict[str, str] | None = None,
               install_hint: str = "", aside: Callable[[str], bool] | None = None) -> Completed:
        raise AssertionError("a check streams nothing")

    def terminate_all(self, grace: float = 5.0) -> None:
        pass


def test_an_adapter_starts_its_tool_through_the_seam_it_is_given() -> None:
    """Skopeo over a given proc.Processes: a 503 is classified, retried by Reliable with a notice, and
    the second answer's manifest gives the digest; no process is started."""
    raw = b'{"schemaVersion": 2}'
    procs = _RecordedProcesses([(1, b"", CASES[3][0]), (0, raw, "")])
    reg = Reliable(Skopeo(procs=procs), Policy(deadline=5.0, initial=0.01, maximum=0.02))
    notices: list[retry.Notice] = []
    reg.on_retry = notices.append
    assert reg.digest(parse("r/a:b")) == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert [argv[:4] for argv in procs.argvs] == [["skopeo", "--debug", "inspect", "--raw"]] * 2
    assert [(n.attempt, n.error) for n in notices] == [(1, "503 Service Unavailable")]

"""Classification of crane's and skopeo's failures, from their real stderr texts."""

from __future__ import annotations

import pytest
import tenacity

from reglessbuild.errors import RegistryAuthError, RegistryError
from reglessbuild.registry import retry
from reglessbuild.registry.errors import (Fault, TransientRegistryError, classify, last_error_line, midway,
                                          raise_for)
from reglessbuild.registry.retry import Policy

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

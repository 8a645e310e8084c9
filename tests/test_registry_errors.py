"""Classification of crane's and skopeo's failures, from their real stderr texts."""

from __future__ import annotations

import pytest

from reglessbuild.errors import RegistryAuthError, RegistryError
from reglessbuild.registry.errors import Fault, TransientRegistryError, classify, last_error_line, raise_for

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

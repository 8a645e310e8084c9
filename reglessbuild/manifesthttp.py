"""A registry's manifests over plain HTTP, in this process: the ping, a HEAD for a digest, a GET for the bytes
(and, through `send`, the few uploads of an inputs record's push: registry/layoutpush.py).

Where the answer is plain — anonymous access (the registry's ping, `GET /v2/`, says 200) or HTTP basic
credentials written plainly in a config file the tools read — it answers; anything else raises
Unhandled, for the registry tool to answer instead (registry/direct.py hands it over; a replay,
replay.py, makes the run in full): a token (Bearer) challenge, credential helpers, a proxy,
per-registry certificates or registries.conf entries for the host, Docker Hub, schema 1 manifests, a
connection or TLS failure, and every status but 200 and 404. So an answer given is one the tool would
have given: 404 means not there, 200 with a well-formed Docker-Content-Digest gives the digest, and
nothing can make a missing or stale image look present.

It stands apart from the registry package, and takes plain strings, so that a replay can ask the
registry without importing the registry tools' adapters.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import http1, plainauth
from .hosts import registry_matches

if TYPE_CHECKING:
    import ssl

# what crane and skopeo accept: the registry then serves the manifest as stored (schema 1 is accepted
# only to be recognised and handed to the tool, whose digest of it may differ from the header's)
INDEXES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
MODERN = (*INDEXES, "application/vnd.oci.image.manifest.v1+json",
          "application/vnd.docker.distribution.manifest.v2+json")
ACCEPT = ", ".join((*MODERN, "application/vnd.docker.distribution.manifest.v1+prettyjws",
                    "application/vnd.docker.distribution.manifest.v1+json"))
MAX_MANIFEST = 4 << 20  # bytes of a manifest read directly (CNCF Distribution's own limit)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class Unhandled(Exception):
    """A request or answer this client does not plainly handle: the tool is asked instead."""


class _Host:
    """What the ping of one registry found: how to reach it, and whether direct requests may be made."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.known = False
        self.usable = False
        self.scheme = "https"
        self.auth: str | None = None  # the Authorization header of plain basic credentials
        self.why = ""  # why the tool answers for this host (for -v and the tests)


class ManifestClient:
    """Manifest requests to registries over HTTP where plain (the module's doc), each thread on its own
    kept-alive connections. `tool` is the registry tool that answers otherwise (what it reads decides
    which setups are plain: plainauth.unhandled_setup)."""

    def __init__(self, *, tool: str, insecure: Sequence[str] = (), ca_file: Path | None = None,
                 timeout: float = 30.0, env: Mapping[str, str] | None = None) -> None:
        self.tool = tool
        self.insecure = tuple(insecure)
        self.ca_file = ca_file
        self.timeout = timeout
        self.env = dict(env if env is not None else os.environ)
        self._hosts: dict[str, _Host] = {}
        self._lock = threading.Lock()
        self._local = threading.local()  # each thread's connections, by (scheme, registry)
        self._contexts: dict[bool, ssl.SSLContext] = {}

    def host_state(self, registry: str) -> tuple[bool, str]:
        """Whether `registry` is answered directly, and if not why (after its ping; for -v and tests)."""
        host = self._host(registry)
        return host.usable, host.why

    def digest(self, registry: str, repository: str, reference: str, pinned: str | None = None) -> str | None:
        """The digest of the manifest `reference` (a tag or a digest) names, from a HEAD (None: a 404).
        `pinned`: the digest the reference must have (a reference by digest)."""
        status, headers, _ = self._manifest_request("HEAD", registry, repository, reference)
        if status == 404:
            return None
        if status != 200:
            raise Unhandled(f"HEAD answered {status}")
        got = self._checked_digest(pinned, headers)
        if got is None:
            raise Unhandled("no Docker-Content-Digest")
        return got

    def manifest(self, registry: str, repository: str, reference: str, pinned: str | None = None) -> bytes | None:
        """The manifest's bytes from a GET (None: a 404), checked against its digest."""
        status, headers, body = self._manifest_request("GET", registry, repository, reference)
        if status == 404:
            return None
        if status != 200:
            raise Unhandled(f"GET answered {status}")
        import hashlib  # only a manifest read checks its bytes; a restart's checks are HEADs

        actual = "sha256:" + hashlib.sha256(body).hexdigest()
        said = self._checked_digest(pinned, headers)
        if said != actual or (pinned is not None and pinned != actual):
            raise Unhandled("the manifest's bytes do not match its digest")
        return body

    def send(self, method: str, registry: str, target: str, headers: Mapping[str, str] | None = None,
             body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        """Any request to `registry` where its answers are plain (the module's doc), else Unhandled: what
        the direct push of a layout (registry/layoutpush.py) sends. `target` is a path, or a URL on the same
        scheme and host (what a registry's Location header may give); another host is Unhandled. The answer
        is not judged here: the caller takes only the statuses it knows."""
        host = self._host(registry)
        if not host.usable:
            raise Unhandled(host.why)
        if target.startswith(("http://", "https://")):
            origin = f"{host.scheme}://{registry}"
            if not target.startswith(origin + "/"):
                raise Unhandled(f"a URL on another host or scheme: {target[:80]!r}")
            target = target[len(origin):]
        if not target.startswith("/"):
            raise Unhandled(f"a relative path {target[:80]!r}")
        auth = {"Authorization": host.auth} if host.auth else {}
        return self._request(host.scheme, registry, method, target, {**(headers or {}), **auth}, body)

    def _checked_digest(self, pinned: str | None, headers: Mapping[str, str]) -> str | None:
        kind = headers.get("content-type", "").split(";")[0].strip()
        if kind not in MODERN:
            raise Unhandled(f"manifest of type {kind!r}")
        said = headers.get("docker-content-digest")
        if said is None:
            return None
        if not _DIGEST.match(said) or (pinned is not None and said != pinned):
            raise Unhandled(f"Docker-Content-Digest {said[:80]!r}")
        return said

    def _manifest_request(self, method: str, registry: str, repository: str,
                          reference: str) -> tuple[int, dict[str, str], bytes]:
        host = self._host(registry)
        if not host.usable:
            raise Unhandled(host.why)
        headers = {"Accept": ACCEPT, **({"Authorization": host.auth} if host.auth else {})}
        return self._request(host.scheme, registry, method, f"/v2/{repository}/manifests/{reference}", headers)

    def _host(self, registry: str) -> _Host:
        with self._lock:
            host = self._hosts.setdefault(registry, _Host())
        with host.lock:
            if not host.known:
                self._ping(registry, host)
                host.known = True
        return host

    def _ping(self, registry: str, host: _Host) -> None:
        """Find how to reach `registry` (https; where it is insecure, http or https without
        verification, whichever answers as a registry) and whether its answers are plain: the API root
        answers 200, or 401 with a Basic challenge that plain credentials meet. An insecure registry is
        asked over http first: an https server answers a plain request at once (400), while a plain
        one may wait for the rest of a TLS handshake it cannot read."""
        host.why = plainauth.unhandled_setup(registry, self.env, tool=self.tool)
        if host.why:
            return
        schemes = ("http", "https") if registry_matches(registry, self.insecure) else ("https",)
        for scheme in schemes:
            try:
                status, headers, _ = self._request(scheme, registry, "GET", "/v2/", {})
            except Unhandled as exc:
                host.why = f"{scheme}: {exc}"
                continue
            if status == 400 and scheme != schemes[-1]:
                host.why = f"{scheme}: its API root answered {status}"
                continue  # what an https server answers a plain request
            host.scheme, host.why = scheme, ""
            if status == 200:
                host.usable = True
                return
            challenge = headers.get("www-authenticate", "")
            if status != 401 or not challenge.lower().startswith("basic"):
                host.why = f"its API root answered {status} {challenge.split(' ')[0]}".strip()
                return
            auth = plainauth.basic(registry, self.env)
            if auth is None:
                host.why = "it asks for credentials that are not plain basic ones in a config file"
                return
            status, _, _ = self._request(scheme, registry, "GET", "/v2/", {"Authorization": auth})
            host.usable, host.auth = status == 200, auth
            host.why = "" if host.usable else f"its API root answered {status} to the credentials"
            return

    def _request(self, scheme: str, registry: str, method: str, path: str,
                 headers: dict[str, str], body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        """One request over this thread's kept-alive connection (a new one where the old was closed)."""
        for attempt in (1, 2):
            conn = self._connection(scheme, registry, fresh=attempt == 2)
            try:
                return conn.request(method, path, {"User-Agent": "regless", **headers}, MAX_MANIFEST, body)
            except http1.Closed as exc:  # a kept-alive connection the registry had closed: once more on a new one
                if attempt == 2:
                    raise Unhandled(f"connection lost ({exc})") from exc
            except (OSError, http1.Malformed, ValueError) as exc:
                conn.close()
                raise Unhandled(f"{type(exc).__name__}: {exc}") from exc
        raise Unhandled("unreachable")  # pragma: no cover - the loop returns or raises

    def _connection(self, scheme: str, registry: str, *, fresh: bool) -> http1.Connection:
        conns: dict[tuple[str, str], http1.Connection] = self._local.__dict__.setdefault("conns", {})
        conn = conns.get((scheme, registry))
        if conn is not None and fresh:
            conn.close()
        if conn is None or fresh:
            tls = self._context(registry_matches(registry, self.insecure)) if scheme == "https" else None
            conn = http1.Connection(registry, scheme, timeout=self.timeout, tls=tls)
            conns[(scheme, registry)] = conn
        return conn

    def _context(self, insecure: bool) -> ssl.SSLContext:
        import ssl

        with self._lock:
            if insecure not in self._contexts:
                if insecure:  # what the tools' --insecure / --tls-verify=false do; no roots to load
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                else:
                    ctx = ssl.create_default_context()
                if not insecure and self.ca_file is not None:
                    ctx.load_verify_locations(cafile=str(self.ca_file))  # besides the system's roots
                self._contexts[insecure] = ctx
            return self._contexts[insecure]

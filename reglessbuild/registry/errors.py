"""What a registry tool's failure means, read from its stderr (crane and skopeo exit 1 for everything).

`classify` is the one place that decides; `is_transient` is what the retry layer asks.
"""

from __future__ import annotations

import re
from enum import Enum

from ..errors import RegistryAuthError, RegistryError

AUTH_HINT = ("credentials are read from docker's config.json ($DOCKER_CONFIG/config.json, else "
             "~/.docker/config.json) and from $REGISTRY_AUTH_FILE; log in with `skopeo login` or `crane auth login`")


class Fault(Enum):
    NOT_FOUND = "not found"
    AUTH = "auth"
    TRANSIENT = "transient"
    TLS = "tls"
    PERMANENT = "permanent"


# registry error codes are upper case (crane prints them as they come); phrases as skopeo prints them
_AUTH = re.compile(r"(?i:\bunauthorized\b|(?<!permission )\bdenied\b|authentication required|401 Unauthorized|"
                   r"403 Forbidden|status: 40[13]\b|status code 40[13]\b)")
_NOT_FOUND = re.compile(r"manifest unknown|MANIFEST_UNKNOWN|name unknown|NAME_UNKNOWN|"
                        r"repository name not known", re.I)
_TLS = re.compile(r"x509:|server gave HTTP response to HTTPS client|first record does not look like a TLS handshake",
                  re.I)
_TRANSIENT = re.compile(
    r"connection refused|connection reset|broken pipe|\bEOF\b|i/o timeout|timeout|timed out|no route to host|"
    r"TOOMANYREQUESTS|too many requests|\b429\b|\b5\d\d\b|UNAVAILABLE|service unavailable|bad gateway|"
    r"BLOB_UPLOAD_INVALID|server misbehaving|temporary failure|network is unreachable",
    re.I,
)


# a transient fault at first contact, or one that asks for patience: the registry may be down or
# overloaded, so the next attempt waits longer each time
_UNANSWERED = re.compile(
    r"pinging (?:container|docker) registry|connection refused|no route to host|network is unreachable|"
    r"server misbehaving|temporary failure|timeout|timed out|TOOMANYREQUESTS|too many requests|\b429\b",
    re.I,
)


def classify(stderr: str) -> Fault:
    if _TLS.search(stderr):
        return Fault.TLS
    if _AUTH.search(stderr):
        return Fault.AUTH
    if _NOT_FOUND.search(stderr):
        return Fault.NOT_FOUND
    if _TRANSIENT.search(stderr):
        return Fault.TRANSIENT
    return Fault.PERMANENT


def midway(stderr: str) -> bool:
    """A transient fault after the registry had answered: one request of the many in a push, pull or
    copy failed (a 5xx, a reset) while the registry is up. buildah and skopeo retry only whole
    operations, and an attempt succeeds only when all its requests do, so such a fault is worth
    another attempt soon; backing off as for a registry that is down lets a flaky one outlast the
    deadline. Read from the tool's last error line (earlier lines may be its own retries)."""
    line = last_error_line(stderr)
    return classify(line) is Fault.TRANSIENT and not _UNANSWERED.search(line)


class TransientRegistryError(RegistryError):
    """A fault worth another try; outlives the retries as RegistryUnreachable."""

    def __init__(self, message: str, *, registry: str, midway: bool = False) -> None:
        super().__init__(message)
        self.registry = registry
        self.midway = midway  # see midway(): the next attempt starts soon


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TransientRegistryError)


_LOGRUS_MSG = re.compile(r'msg="((?:[^"\\]|\\.)*)"')


def last_error_line(stderr: str) -> str:
    """The tool's own message, without log prefixes (skopeo: time=… level=fatal msg="…")."""
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    if not lines:
        return "(no message)"
    line = lines[-1]
    if m := _LOGRUS_MSG.search(line):
        line = m.group(1).replace('\\"', '"')
    return line.removeprefix("Error: ")[:400]


def raise_for(stderr: str, *, registry: str, action: str) -> None:
    """Turn a tool failure into the right error. Returns only for NOT_FOUND."""
    fault = classify(stderr)
    msg = f"{action}: {last_error_line(stderr)}"
    if fault is Fault.NOT_FOUND:
        return
    if fault is Fault.AUTH:
        raise RegistryAuthError(f"registry {registry} refused access ({msg})", hint=AUTH_HINT)
    if fault is Fault.TLS:
        raise RegistryError(f"TLS to registry {registry} failed ({msg})",
                            hint=f"for a plain-http registry list it under registry.insecure: [{registry}]")
    if fault is Fault.TRANSIENT:
        raise TransientRegistryError(msg, registry=registry, midway=midway(stderr))
    raise RegistryError(f"registry {registry}: {msg}")

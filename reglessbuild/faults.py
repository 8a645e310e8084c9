"""What a registry fault in a tool's output means: the one classifier of crane, skopeo and buildah failures.

Registry tools (crane, skopeo) and builders (buildah pulls and pushes) meet the same registries and
print the same containers/image and go-containerregistry texts, and both exit 1 for everything: the
text is all there is to read. This module sits beside both layers (registry/ and builders/ import it,
neither imports the other) so that a 503 means the same to a check, a retag and a push.

`classify` is the one place that decides; `is_transient` is what the retry layer (retrying.py) asks,
`midway` tells it how soon to try again, and `retry_after` reads how long a registry asked to be left
alone, where the tool's log shows it. The texts these read are the tools' own, recorded in
shared/reference/crane-faults.md and crane-cli.md (crane v0.20.2) and in tests/test_registry_errors.py
(skopeo 1.9, buildah 1.28).
"""

from __future__ import annotations

import re
import time
from enum import Enum
from functools import cached_property

from .errors import RegistryAuthError, RegistryError

AUTH_HINT = ("credentials are read from docker's config.json ($DOCKER_CONFIG/config.json, else "
             "~/.docker/config.json) and from $REGISTRY_AUTH_FILE; log in with `skopeo login` or `crane auth login`")


class _Pattern:
    """A regular expression compiled when first used: most runs never read a failure, and importing
    this module is on every run's path."""

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern, self.flags = pattern, flags

    @cached_property
    def compiled(self) -> re.Pattern[str]:
        return re.compile(self.pattern, self.flags)

    def search(self, text: str) -> re.Match[str] | None:
        return self.compiled.search(text)

    def split(self, text: str) -> list[str]:
        return self.compiled.split(text)

    def findall(self, text: str) -> list[tuple[str, str]]:
        return self.compiled.findall(text)


class Fault(Enum):
    """What a tool's failure was, as far as a retry or a report needs to know."""

    NOT_FOUND = "not found"
    AUTH = "auth"
    TRANSIENT = "transient"
    TLS = "tls"
    PERMANENT = "permanent"


# registry error codes are upper case (crane prints them as they come); phrases as skopeo prints them
_AUTH = _Pattern(r"(?i:\bunauthorized\b|(?<!permission )\bdenied\b|authentication required|401 Unauthorized|"
                   r"403 Forbidden|status: 40[13]\b|status code 40[13]\b)")
_NOT_FOUND = _Pattern(r"manifest unknown|MANIFEST_UNKNOWN|name unknown|NAME_UNKNOWN|"
                        r"repository name not known", re.IGNORECASE)
_TLS = _Pattern(r"x509:|server gave HTTP response to HTTPS client|first record does not look like a TLS handshake",
                  re.IGNORECASE)
_TRANSIENT = _Pattern(
    r"connection refused|connection reset|broken pipe|\bEOF\b|i/o timeout|timeout|timed out|no route to host|"
    r"TOOMANYREQUESTS|too many requests|\b429\b|\b5\d\d\b|UNAVAILABLE|service unavailable|bad gateway|"
    r"BLOB_UPLOAD_INVALID|server misbehaving|temporary failure|network is unreachable",
    re.IGNORECASE,
)


# a transient fault at first contact, or one that asks for patience: the registry may be down or
# overloaded, so the next attempt waits longer each time. First contact is skopeo's "pinging container
# registry" and crane's request to the API root, `GET http://host/v2/:` or `Get "http://host/v2/":`
_UNANSWERED = _Pattern(
    r"pinging (?:container|docker) registry|/v2/\"?: |connection refused|no route to host|network is unreachable|"
    r"server misbehaving|temporary failure|timeout|timed out|TOOMANYREQUESTS|too many requests|\b429\b",
    re.IGNORECASE,
)

# crane tries HTTPS, then plain HTTP for a loopback or private registry, and joins both failures with
# "; " (crane-faults.md): `Get "https://h/v2/": <why https failed>; GET http://h/v2/: <why http failed>`.
# The HTTP attempt's cause is what happened; the HTTPS one only says the registry speaks plain HTTP.
_HTTP_ATTEMPT = _Pattern(r'; (?=(?:Get|GET|HEAD) "?http://)')


_SPEAKS_HTTPS = _Pattern(r"HTTP request to an HTTPS server")


def last_attempt(line: str) -> str:
    """The cause that tells what happened in a message that joins an HTTPS and a plain-HTTP attempt:
    the plain-HTTP one, unless the registry answered it that it speaks HTTPS (a TLS registry whose CA
    crane does not trust), where the HTTPS failure (x509: ...) is the cause."""
    parts = _HTTP_ATTEMPT.split(line)
    if len(parts) > 1 and _SPEAKS_HTTPS.search(parts[-1]):
        return parts[0]
    return parts[-1]


def classify(stderr: str) -> Fault:
    """The fault behind a tool's failure, read from its final error message only: earlier lines are the
    tool's own retries and fallbacks (crane's "HEAD request failed, falling back on GET: ...")."""
    line = last_attempt(final_message(stderr))
    if _TLS.search(line):
        return Fault.TLS
    if _AUTH.search(line):
        return Fault.AUTH
    if _NOT_FOUND.search(line):
        return Fault.NOT_FOUND
    if _TRANSIENT.search(line):
        return Fault.TRANSIENT
    return Fault.PERMANENT


# where a tool's log shows a Retry-After header: crane -v dumps response headers (`Retry-After: 2`);
# containers/image (skopeo --debug, buildah --log-level=debug) logs `Detected 'Retry-After' header "2"`
_RETRY_AFTER = _Pattern(r"""^Retry-After: *(.+?)\s*$|Detected 'Retry-After' header \\?"([^"\\]+)""",
                          re.MULTILINE | re.IGNORECASE)


def retry_after(log: str, *, now: float | None = None) -> float | None:
    """Seconds the registry asked to wait (the last Retry-After in the tool's log), or None. The header is
    delta-seconds or an HTTP date (RFC 9110 10.2.3); a value that is neither is ignored."""
    found = [a or b for a, b in _RETRY_AFTER.findall(log)]
    if not found:
        return None
    value = found[-1].strip()
    if value.isdigit():
        return float(value)
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def midway(stderr: str) -> bool:
    """A transient fault after the registry had answered: one request of the many in a push, pull or
    copy failed (a 5xx, a reset) while the registry is up. buildah and skopeo retry only whole
    operations, and an attempt succeeds only when all its requests do, so such a fault is worth
    another attempt soon; backing off as for a registry that is down lets a flaky one outlast the
    deadline. Read from the tool's last error line (earlier lines may be its own retries)."""
    line = last_attempt(final_message(stderr))
    return classify(line) is Fault.TRANSIENT and not _UNANSWERED.search(line)


class TransientRegistryError(RegistryError):
    """A fault worth another try; outlives the retries as RegistryUnreachable."""

    def __init__(self, message: str, *, registry: str, midway: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.registry = registry
        self.midway = midway  # see midway(): the next attempt starts soon
        self.retry_after = retry_after  # seconds the registry asked for (Retry-After): the least wait


_STATUS_TEXT = {"429": "429 Too Many Requests", "500": "500 Internal Server Error", "502": "502 Bad Gateway",
                "503": "503 Service Unavailable", "504": "504 Gateway Timeout"}


def short_cause(message: str) -> str:
    """A transient failure's cause in a few words, for a line that says a retry is coming: the phrase
    that made it transient ("connection refused", "503 Service Unavailable"), else the message cut."""
    line = last_attempt(final_message(message))
    m = _TRANSIENT.search(line)
    if m is None:
        return line[:80]
    word = m.group(0)
    return _STATUS_TEXT.get(word, f"status {word}" if word.isdigit() else word.lower()
                            if not word.isupper() else word)


def is_transient(exc: BaseException) -> bool:
    """A failure worth another attempt (retrying.call's `worth` for registry operations)."""
    return isinstance(exc, TransientRegistryError)


_LOGRUS_MSG = _Pattern(r'msg="((?:[^"\\]|\\.)*)"')
_BELOW_ERROR = _Pattern(r"level=(?:trace|debug|info|warning) ")


def final_message(stderr: str) -> str:
    """The tool's own last message, whole, without log prefixes (skopeo: time=… level=fatal msg="…").
    Log lines below error (skopeo --debug, buildah's `level=info msg="failed to shutdown storage..."`)
    are passed over: they come after the error at times."""
    every = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    lines = [ln for ln in every if not _BELOW_ERROR.search(ln)] or every
    if not lines:
        return "(no message)"
    line = lines[-1]
    if m := _LOGRUS_MSG.search(line):
        line = m.group(1).replace('\\"', '"')
    return line.removeprefix("Error: ")


def last_error_line(stderr: str) -> str:
    """final_message, cut to a length fit for a one-line report."""
    return final_message(stderr)[:400]


def raise_for(stderr: str, *, registry: str, action: str, log: str = "", retries_requests: bool = False) -> None:
    """Turn a tool failure into the right error. Returns only for NOT_FOUND. `log` is the tool's whole
    output where it may hold a Retry-After (the tail in `stderr` may not reach back to it). A tool that
    `retries_requests` itself (crane: 3 tries of each) failed only after a request failed several times
    in a row: never `midway`, so the next attempt backs off (docs/registry-retries.md)."""
    fault = classify(stderr)
    msg = f"{action}: {last_attempt(last_error_line(stderr))}"
    if fault is Fault.NOT_FOUND:
        return
    if fault is Fault.AUTH:
        raise RegistryAuthError(f"registry {registry} refused access ({msg})", hint=AUTH_HINT)
    if fault is Fault.TLS:
        raise RegistryError(f"TLS to registry {registry} failed ({msg})",
                            hint=f"for a plain-http registry list it under registry.insecure: [{registry}]")
    if fault is Fault.TRANSIENT:
        raise TransientRegistryError(msg, registry=registry, midway=midway(stderr) and not retries_requests,
                                     retry_after=retry_after(log or stderr))
    raise RegistryError(f"registry {registry}: {msg}")

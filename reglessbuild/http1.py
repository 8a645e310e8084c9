"""One HTTP/1.1 request at a time over a kept-alive connection: what a registry's manifest checks need.

The direct checks (manifesthttp.py) ask a registry for a status, a few headers and at most a manifest's
bytes; the direct push of an inputs record (registry/layoutpush.py) sends a few small blobs and
manifests. The standard library's http.client does that, but importing it imports the email package with
it, about a third of what a no-change restart imports when it is replayed (replay.py). This speaks the
small part of HTTP/1.1 those use, strictly: a request with a body of a stated Content-Length (always
stated for POST and PUT, 0 for none; no chunked bodies, no `Expect: 100-continue`); a status line;
header fields; a body of a stated Content-Length, none for HEAD, 204 or 304. Anything else — an interim
1xx answer, a chunked or unbounded body, a folded or malformed header line, a header section over
64 KiB — raises Malformed, and the direct client then leaves the question to the registry tool, which
speaks the whole protocol.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

MAX_HEAD = 64 << 10  # bytes of a status line and header fields together


class Malformed(Exception):
    """An answer outside what this client reads (the module's doc)."""


class Closed(Exception):
    """The registry had closed the kept-alive connection before answering: ask again on a new one."""


def split_address(registry: str, scheme: str) -> tuple[str, int]:
    """`host[:port]` (an IPv6 host in brackets) as a host and a port (443 for https, 80 for http)."""
    default = 443 if scheme == "https" else 80
    if registry.startswith("["):
        host, _, rest = registry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default
    host, _, port = registry.partition(":")
    return host, int(port) if port else default


def _ascii_host(host: str) -> str | bytes:
    """The host as getaddrinfo takes it. A str is encoded with the idna codec first, whose import (with
    stringprep's) a check would pay for before a build's builder starts; an ASCII name is the same bytes
    (the codec's fast path), so those are given as bytes, except where the codec refuses a label (empty,
    or 64 characters or more), whose error stays the codec's."""
    labels = host.split(".")
    if host.isascii() and all(0 < len(x) < 64 for x in labels[:-1]) and len(labels[-1]) < 64:
        return host.encode("ascii")
    return host


class Connection:
    """A connection to one registry (`host:port`, as written in an image reference), opened on first use."""

    def __init__(self, registry: str, scheme: str, *, timeout: float, tls: ssl.SSLContext | None = None) -> None:
        self.registry = registry
        self.host, self.port = split_address(registry, scheme)
        self.timeout = timeout
        self.tls = tls
        self._sock: socket.socket | None = None
        self._buffer = b""

    def close(self) -> None:
        """Close the connection (the next request opens a new one)."""
        if self._sock is not None:
            self._sock.close()
        self._sock, self._buffer = None, b""

    def request(self, method: str, path: str, headers: dict[str, str], max_body: int,
                body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        """Send a request, with `body` (its Content-Length stated; always for POST and PUT); its answer's
        status, header fields (names in lower case; a repeated field's values joined by ", ") and body (of
        at most `max_body` bytes: Malformed if more). The caller's headers frame nothing: a Content-Length,
        Transfer-Encoding or Expect among them is refused (ValueError), as are a body on GET or HEAD and a
        path or field with a line break (a registry's Location header is sent back as a path)."""
        if any(k.lower() in ("content-length", "transfer-encoding", "expect") for k in headers):
            raise ValueError("the request's framing is this client's: no Content-Length, Transfer-Encoding or Expect")
        if body and method in ("GET", "HEAD"):
            raise ValueError(f"a {method} request has no body")
        if any(c in text for text in (method, path, *headers, *headers.values()) for c in "\r\n\0") or " " in path:
            raise ValueError("a request line or header field with a line break, NUL or (in the path) a space")
        framing = [f"Content-Length: {len(body)}"] if body or method in ("POST", "PUT", "PATCH") else []
        reused = self._sock is not None
        if self._sock is None:
            # getaddrinfo takes a host as bytes too (typeshed's create_connection says str only)
            sock = socket.create_connection((_ascii_host(self.host), self.port),  # type: ignore[arg-type]
                                            timeout=self.timeout)
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_hostname=self.host)
            self._sock = sock
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.registry}", *(f"{k}: {v}" for k, v in headers.items()),
                 *framing]
        try:
            self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            status_line = self._line()
        except (BrokenPipeError, ConnectionResetError) as exc:
            self.close()
            if reused:
                raise Closed(str(exc)) from exc
            raise
        if not status_line:
            self.close()
            if reused:
                raise Closed("closed before the answer")
            raise Malformed("no answer")
        try:
            version, code, _ = (status_line.decode("latin-1").rstrip("\r\n") + " ").split(" ", 2)
            status = int(code)
        except ValueError:
            status, version = 0, ""
        if version not in ("HTTP/1.1", "HTTP/1.0") or not 200 <= status <= 599 or len(code) != 3:
            self.close()
            raise Malformed(f"status line {status_line[:80]!r}")
        fields: dict[str, str] = {}
        size = len(status_line)
        while (line := self._line()) not in (b"\r\n", b"\n"):
            size += len(line)
            if not line or size > MAX_HEAD or line[:1] in (b" ", b"\t") or b":" not in line:
                self.close()
                raise Malformed("a header section this client does not read")
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            fields[name] = f"{fields[name]}, {value}" if name in fields else value
        body = self._body(method, status, fields, max_body)
        if version == "HTTP/1.0" or "close" in fields.get("connection", "").lower():
            self.close()
        return status, fields, body

    def _body(self, method: str, status: int, fields: dict[str, str], max_body: int) -> bytes:
        if method == "HEAD" or status in (204, 304):
            return b""
        length = fields.get("content-length", "")
        if "transfer-encoding" in fields or not length.isdigit():
            self.close()
            raise Malformed("a body without a Content-Length")
        n = int(length)
        if n > max_body:
            self.close()
            raise Malformed(f"an answer of {n} bytes")
        while len(self._buffer) < n:
            if not self._fill():
                self.close()
                raise Malformed("the answer ended early")
        body, self._buffer = self._buffer[:n], self._buffer[n:]
        return body

    def _line(self) -> bytes:
        """The next line (with its end), b"" at the end of the stream."""
        while (end := self._buffer.find(b"\n")) < 0:
            if len(self._buffer) > MAX_HEAD or not self._fill():
                line, self._buffer = self._buffer, b""
                return line
        line, self._buffer = self._buffer[:end + 1], self._buffer[end + 1:]
        return line

    def _fill(self) -> bool:
        assert self._sock is not None
        chunk = self._sock.recv(65536)
        self._buffer += chunk
        return bool(chunk)

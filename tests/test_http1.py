"""reglessbuild/http1.py against a socket that answers as scripted: the HTTP/1.1 it reads, and the rest it
refuses (Malformed, for the direct client to hand the question to the registry tool). The real registry's
answers are read in tests/test_direct.py."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from reglessbuild import http1


@pytest.fixture
def server() -> Iterator[tuple[str, list[bytes]]]:
    """A loopback listener that answers each request it reads with the next scripted answer; a scripted
    b"" closes the connection right after the answer before it (the next request then needs a new one)."""
    answers: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                buf = b""
                while answers:
                    while b"\r\n\r\n" not in buf:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        buf += chunk
                    if b"\r\n\r\n" not in buf:
                        break
                    buf = buf.split(b"\r\n\r\n", 1)[1]
                    answer = answers.pop(0)
                    if answer:
                        conn.sendall(answer)
                    if answers and not answers[0]:  # scripted: close now
                        answers.pop(0)
                        break

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}", answers
    stop.set()
    t.join()
    listener.close()


def ask(address: str, method: str = "HEAD", conn: http1.Connection | None = None) -> tuple[int, dict[str, str], bytes]:
    c = conn or http1.Connection(address, "http", timeout=5)
    return c.request(method, "/v2/x/manifests/t", {"Accept": "*/*"}, 1000)


def test_a_head_and_a_get_on_one_kept_alive_connection(server: tuple[str, list[bytes]]) -> None:
    address, answers = server
    answers += [b"HTTP/1.1 200 OK\r\nContent-Type: a/b\r\nDocker-Content-Digest: sha256:1\r\nContent-Length: 5\r\n\r\n",
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nX-A: 1\r\nx-a: 2\r\n\r\n{}\r\n"]
    conn = http1.Connection(address, "http", timeout=5)
    assert ask(address, "HEAD", conn) == (200, {"content-type": "a/b", "docker-content-digest": "sha256:1",
                                                "content-length": "5"}, b"")
    assert ask(address, "GET", conn) == (404, {"content-length": "4", "x-a": "1, 2"}, b"{}\r\n")


def test_a_kept_alive_connection_closed_by_the_registry_is_closed_not_malformed(server: tuple[str, list[bytes]]) -> None:
    address, answers = server
    answers += [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", b""]
    conn = http1.Connection(address, "http", timeout=5)
    assert ask(address, "HEAD", conn)[0] == 200
    with pytest.raises(http1.Closed):
        ask(address, "HEAD", conn)


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",  # an interim answer
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",  # chunked
    b"HTTP/1.0 200 OK\r\n\r\n{}",  # a body up to the close
    b"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n",  # a folded header line
    b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n" + b"x" * 2000,  # over max_body
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",  # ended early (then closed)
    b"HTTP/2 200\r\n\r\n",  # another protocol
    b"SSH-2.0-OpenSSH\r\n",  # not HTTP at all
])
def test_what_it_does_not_read_is_malformed(server: tuple[str, list[bytes]], answer: bytes) -> None:
    address, answers = server
    answers += [answer, b""]
    with pytest.raises(http1.Malformed):
        ask(address, "GET")


def test_addresses() -> None:
    assert http1.split_address("r.example", "https") == ("r.example", 443)
    assert http1.split_address("127.0.0.1:5000", "http") == ("127.0.0.1", 5000)
    assert http1.split_address("[::1]:5000", "https") == ("::1", 5000)
    assert http1.split_address("[::1]", "http") == ("::1", 80)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "registry.example.com", "[::1]", "a" * 63 + ".io",
                                  "trailing.dot.", "a" * 64, "two..dots", "b\u00fccher.example", "x." + "a" * 64])
def test_a_host_reaches_getaddrinfo_as_the_idna_codec_makes_it(host: str) -> None:
    # an ASCII name goes as bytes (no idna codec to import before a build's builder starts): the codec's bytes;
    # any other name, and a label the codec refuses, stays a str, so the codec encodes it, or refuses it, as before
    got = http1._ascii_host(host)
    try:
        want: bytes | None = host.encode("idna")
    except UnicodeError:
        want = None
    if isinstance(got, bytes):
        assert got == want and host.isascii()
    else:
        assert got == host and (want is None or not host.isascii())


def test_a_body_is_framed_by_its_content_length_and_the_connection_kept() -> None:
    """POST and PUT state their Content-Length (0 for none), and the next request follows on the same
    connection: the server reads each request's body by it, as a registry does."""
    seen: list[tuple[bytes, bytes]] = []
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            buf = b""
            for _ in range(3):
                while b"\r\n\r\n" not in buf:
                    buf += conn.recv(4096)
                head, buf = buf.split(b"\r\n\r\n", 1)
                length = int(next((ln.split(b":")[1] for ln in head.split(b"\r\n")
                                   if ln.lower().startswith(b"content-length:")), b"0"))
                while len(buf) < length:
                    buf += conn.recv(4096)
                seen.append((head, buf[:length]))
                buf = buf[length:]
                conn.sendall(b"HTTP/1.1 201 Created\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    conn = http1.Connection(f"127.0.0.1:{listener.getsockname()[1]}", "http", timeout=5)
    assert conn.request("POST", "/v2/r/blobs/uploads/", {}, 100)[:2] == (201, {"location": "/x", "content-length": "0"})
    assert conn.request("PUT", "/x?digest=sha256:1", {"Content-Type": "a/b"}, 100, b"\r\n\r\nbody")[0] == 201
    assert conn.request("HEAD", "/v2/r/blobs/sha256:1", {}, 100)[0] == 201
    t.join(5)
    listener.close()
    assert [(h.split(b"\r\n")[0], b"content-length" in h.lower(), b) for h, b in seen] == [
        (b"POST /v2/r/blobs/uploads/ HTTP/1.1", True, b""),
        (b"PUT /x?digest=sha256:1 HTTP/1.1", True, b"\r\n\r\nbody"),
        (b"HEAD /v2/r/blobs/sha256:1 HTTP/1.1", False, b"")]
    assert b"Content-Length: 0" in seen[0][0] and b"Content-Length: 8" in seen[1][0]


@pytest.mark.parametrize(("method", "path", "headers", "body"), [
    ("PUT", "/x", {"Content-Length": "3"}, b"abc"),  # the framing is the client's own
    ("PUT", "/x", {"Transfer-Encoding": "chunked"}, b"abc"),
    ("PUT", "/x", {"Expect": "100-continue"}, b"abc"),
    ("GET", "/x", {}, b"abc"),  # no body on GET or HEAD
    ("HEAD", "/x", {}, b"abc"),
    ("PUT", "/x HTTP/1.1\r\nX-Injected: 1\r\n", {}, b""),  # a Location sent back with a line break in it
    ("PUT", "/x y", {}, b""),
    ("PUT", "/x", {"X-A": "1\r\nX-B: 2"}, b""),
])
def test_a_request_it_does_not_frame_plainly_is_refused_before_sending(method, path, headers, body) -> None:
    conn = http1.Connection("127.0.0.1:1", "http", timeout=1)  # nothing listens there: refused before connecting
    with pytest.raises(ValueError):
        conn.request(method, path, headers, 100, body)

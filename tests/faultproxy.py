"""A fault-injecting HTTP proxy that sits in front of the real registry (tests and benchmarks only).

It forwards every request to the upstream registry and, by rule or at random,
answers instead with 500/502/503, 429 with Retry-After, a reset connection, or a
stall; it can also delay every request. It runs an aiohttp server in a thread.
Its 5xx and 429 answers carry the body `{"errors": [{"code": "UNAVAILABLE", "message": "injected"}]}`,
as the proxy that recorded shared/reference/crane-faults.md did, so that the crane double's recorded
texts are the ones the real crane prints here.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web
from multidict import CIMultiDict

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
       "proxy-authenticate", "host", "content-length"}


@dataclass
class Rule:
    """Inject `fault` into the next `times` requests whose "METHOD path" matches `pattern`."""

    pattern: str
    fault: str  # "500" | "502" | "503" | "429" | "reset" | "stall" | "401" | "403"
    times: int = 1
    retry_after: float | None = None

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and re.search(self.pattern, f"{method} {path}") is not None


@dataclass
class FaultProxy:
    upstream: str  # host:port of the real registry
    delay: float = 0.0  # seconds added to every request
    rate: float = 0.0  # share of requests that fail at random with one of `random_faults`
    random_faults: tuple[str, ...] = ("500", "502", "503", "reset")
    random_retry_after: float | None = None  # Retry-After of a random 429
    stall_seconds: float = 30.0
    seed: int = 1
    rules: list[Rule] = field(default_factory=list)
    log: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, fault or "")
    stamps: list[float] = field(default_factory=list)  # time.monotonic() at which each request of `log` came
    down: bool = False  # answer 503 to everything
    port: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def injected(self) -> list[tuple[str, str, str]]:
        return [x for x in self.log if x[2]]

    # ---------------------------------------------------------------- serving

    def start(self) -> FaultProxy:
        self._random = random.Random(self.seed)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._closing.set)  # ends stalls at once
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            asyncio.run_coroutine_threadsafe(self._session.close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self) -> None:
        self._closing = asyncio.Event()
        self._session = ClientSession(connector=TCPConnector(limit=0), auto_decompress=False,
                                      timeout=ClientTimeout(total=300))
        app = web.Application(client_max_size=1 << 31)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def _pick(self, method: str, path: str) -> tuple[str, float | None]:
        if self.down:
            return "503", None
        for rule in self.rules:
            if rule.matches(method, path):
                rule.times -= 1
                return rule.fault, rule.retry_after
        if self.rate and self._random.random() < self.rate:
            fault = self._random.choice(self.random_faults)
            return fault, self.random_retry_after if fault == "429" else None
        return "", None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path_qs
        fault, retry_after = self._pick(request.method, path)
        self.stamps.append(time.monotonic())
        self.log.append((request.method, request.path, fault))
        if self.delay:
            await asyncio.sleep(self.delay)
        if fault == "reset":
            await request.read()
            assert request.transport is not None
            sock = request.transport.get_extra_info("socket")
            if sock is not None:  # linger 0: the close sends RST (connection reset by peer), not FIN (EOF)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            request.transport.abort()
            return web.Response(status=500)
        if fault == "stall":
            try:
                await asyncio.wait_for(self._closing.wait(), self.stall_seconds)
            except TimeoutError:
                pass
        elif fault:
            await request.read()
            headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
            code, message = {"401": ("UNAUTHORIZED", "authentication required"),
                             "403": ("DENIED", "requested access to the resource is denied")}.get(
                fault, ("UNAVAILABLE", "injected"))
            if fault == "401":
                headers["WWW-Authenticate"] = 'Basic realm="regless-test"'
            return web.json_response({"errors": [{"code": code, "message": message}]},
                                     status=int(fault), headers=headers)
        body = await request.read()
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in HOP)
        async with self._session.request(request.method, f"http://{self.upstream}{path}", headers=headers,
                                         data=body if body else None, allow_redirects=False) as up:
            data = await up.read()
            out = CIMultiDict((k, v) for k, v in up.headers.items() if k.lower() not in HOP)
            if request.method == "HEAD" and "Content-Length" in up.headers:
                # a HEAD answer keeps the registry's Content-Length (the size of what a GET would give):
                # crane takes a HEAD without it for a failure and asks again with a GET
                head = web.StreamResponse(status=up.status, headers=out)
                head.content_length = int(up.headers["Content-Length"])
                await head.prepare(request)
                return head
            return web.Response(status=up.status, headers=out, body=data)


if __name__ == "__main__":  # a delay-only proxy in a process of its own (bin/bench): UPSTREAM DELAY
    import sys

    served = FaultProxy(sys.argv[1], delay=float(sys.argv[2])).start()
    print(served.address, flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    served.stop()

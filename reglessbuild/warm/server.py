"""The warm server's process: import regless and what it imports, then fork a child per command line.

Started by a client (`python -P -m reglessbuild.warm.server PACKAGE FOLDER IDLE`), detached from its session and
streams. It serves only its own user (the peer's uid on the socket) and its own install; a request from
another interpreter or package, or any change to a file of the code it imported, makes it step aside:
the socket is removed and the lock released at once, so that the next client starts a new server, and
it ends once its running children have."""

from __future__ import annotations

import ast
import fcntl
import gc
import importlib
import importlib.util
import os
import pkgutil
import select
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from . import IDLE_SECONDS
from .wire import Folder, context, folder, identity, package, recv, restore_signals, send

__all__ = ["Server", "main", "preimport", "snapshot"]


def preimport() -> None:
    """Import every module of the package, and every module any of them imports anywhere (a function's
    lazy imports included): a child then imports nothing."""
    import reglessbuild

    names: set[str] = set()
    for info in pkgutil.walk_packages(reglessbuild.__path__, "reglessbuild."):
        if info.name == __name__:
            continue
        names.add(info.name)
        spec = importlib.util.find_spec(info.name)
        origin = spec.origin if spec else None
        if origin and origin.endswith(".py"):
            with open(origin, "rb") as f:
                tree = ast.parse(f.read(), origin)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names.update(a.name for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module)
                    names.update(f"{node.module}.{a.name}" for a in node.names)
    for name in sorted(names):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - `from X import function` (no module X.function), an optional
            pass  # module; one that fails here fails in the child as it would alone


def _stamp(path: str) -> tuple[int, int]:
    """(mtime, size) of a file, (-1, -1) where it cannot be read: what says that it changed."""
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1)
    return (st.st_mtime_ns, st.st_size)


def snapshot() -> dict[str, tuple[int, int]]:
    """The stamp of each imported file outside the standard library: regless and its dependencies.
    A change to any of them means this process no longer runs the code a fresh process would."""
    stdlib = os.path.dirname(os.__file__)
    paths = (getattr(module, "__file__", None) for module in list(sys.modules.values()))
    return {p: _stamp(p) for p in paths if p and not (p.startswith(stdlib) and "-packages" not in p)}


def _changed(files: dict[str, tuple[int, int]]) -> str | None:
    return next((path for path, seen in files.items() if _stamp(path) != seen), None)


@dataclass
class Child:
    pid: int
    pidfd: int
    conn: socket.socket


class _Stop(Exception):
    pass


@dataclass
class Server:
    """The loop: accept a request, fork its child, report the child's end, end when idle or stale."""

    where: Folder
    listener: socket.socket | None
    lock_fd: int | None
    idle: float
    files: dict[str, tuple[int, int]]
    context: dict[str, Any] = field(default_factory=context)
    pid: int = field(default_factory=os.getpid)
    started: float = field(default_factory=time.time)
    served: int = 0
    children: dict[int, Child] = field(default_factory=dict)  # by pidfd
    by_conn: dict[int, Child] = field(default_factory=dict)

    def loop(self) -> None:
        """Serve until idle (no request and no child for `idle` seconds), or stepped aside and every
        child done; SIGTERM steps aside."""
        poll = select.poll()
        assert self.listener is not None
        poll.register(self.listener, select.POLLIN)
        last = time.monotonic()

        def stop(_signum: int, _frame: object) -> None:
            raise _Stop

        signal.signal(signal.SIGTERM, stop)
        while self.serving():
            wait = None if self.children else max(0.0, last + self.idle - time.monotonic())
            if wait == 0.0:
                break
            try:
                events = poll.poll(None if wait is None else wait * 1000)
            except _Stop:
                self.step_aside(poll)
                continue
            for fd, _ev in events:
                if self.listener is not None and fd == self.listener.fileno():
                    self.accept(poll)
                    last = time.monotonic()
                elif fd in self.children:
                    self.reap(poll, self.children.pop(fd))
                    last = time.monotonic()
                elif fd in self.by_conn:  # the client went away (or spoke out of turn): stop its command
                    child = self.by_conn.pop(fd)
                    poll.unregister(fd)
                    try:
                        os.kill(child.pid, signal.SIGTERM)
                    except ProcessLookupError:
                        pass
        self.step_aside(poll)

    def serving(self) -> bool:
        """Whether there is anything left to do: requests to take or children to see to the end."""
        return self.listener is not None or bool(self.children)

    def step_aside(self, poll: select.poll) -> None:
        """Stop taking requests: the next client starts a new server; running children finish."""
        if self.listener is not None:
            poll.unregister(self.listener)
            try:
                os.unlink(self.where.socket(identity()))
            except OSError:
                pass
            self.listener.close()
            self.listener = None
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None

    def accept(self, poll: select.poll) -> None:
        """Take one request: a command line to fork a child for, or `status`, or `stop`. Only from this
        user; a command line only from this install and while the imported code is unchanged."""
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        fds: list[int] = []
        try:
            conn.settimeout(5.0)
            _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                                   struct.calcsize("3i")))
            if uid != os.getuid():
                conn.close()
                return
            request = recv(conn)
            if not isinstance(request, dict):
                raise OSError("no request")
            kind = request.get("kind")
            if kind == "status":
                send(conn, {"pid": self.pid, "started": self.started, "served": self.served, "idle": self.idle,
                            "running": len(self.children), "package": package(), "exe": sys.executable})
            elif kind == "stop":
                send(conn, {"stopping": self.pid})
                self.step_aside(poll)
            elif kind == "run" and request.get("context") != self.context:
                # another shell's limits, cgroup or namespaces: a child of this process would not have them
                send(conn, {"other": sorted(k for k, v in self.context.items()
                                            if request.get("context", {}).get(k) != v)})
            elif kind == "run":
                ours = (request.get("exe"), request.get("package")) == (sys.executable, package())
                stale = _changed(self.files) if ours else "another install"
                if stale:
                    send(conn, {"stale": stale})
                    self.step_aside(poll)
                else:
                    send(conn, {"ready": True})
                    if recv(conn, fds) == {"streams": 3} and len(fds) == 3:
                        self.fork(poll, conn, request, fds)
                        return
        except (OSError, ValueError, EOFError, TypeError):
            pass
        for fd in fds:
            os.close(fd)
        conn.close()

    def fork(self, poll: select.poll, conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        """A child for the command line: it tells the client its pid (to pass signals on) and, later, how
        it ended; the server tells it too where the child could not (killed by a signal)."""
        pid = os.fork()
        if pid == 0:
            close = [fd for fd in (self.lock_fd, *(c.pidfd for c in self.children.values()),
                                   *(c.conn.fileno() for c in self.children.values())) if fd is not None]
            if self.listener is not None:
                close.append(self.listener.fileno())
            _child(request, fds, conn, close)  # does not return
        for fd in fds:
            os.close(fd)
        self.served += 1
        conn.settimeout(None)
        pidfd = os.pidfd_open(pid)
        child = Child(pid, pidfd, conn)
        self.children[pidfd] = child
        self.by_conn[conn.fileno()] = child
        poll.register(pidfd, select.POLLIN)
        poll.register(conn, select.POLLIN)

    def reap(self, poll: select.poll, child: Child) -> None:
        """A child ended: its status to its client (who already has it, unless a signal killed it)."""
        poll.unregister(child.pidfd)
        _pid, status = os.waitpid(child.pid, 0)
        os.close(child.pidfd)
        if self.by_conn.pop(child.conn.fileno(), None) is not None:
            poll.unregister(child.conn)
        try:  # the child said so itself where it ended normally; this covers its being killed
            send(child.conn, {"exit": os.waitstatus_to_exitcode(status)})
        except OSError:
            pass
        child.conn.close()


def _child(request: dict[str, Any], fds: list[int], conn: socket.socket, close: list[int]) -> None:
    """In the forked child: become the process the client would have been, run the command, end."""
    try:
        for fd in close:
            os.close(fd)
        # the child says who it is, before anything else can reach the client: its end, which it sends
        # too, then always comes after it (were the server to send the pid, a quick command's end could
        # come first, and the client would run the command again itself)
        send(conn, {"pid": os.getpid()})
        os.setpgid(0, 0)  # a group of its own: a signal to the server's group is not one to the command
        restore_signals(list(request.get("ignored", ())))
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.chdir(str(request["cwd"]))
        os.umask(int(request["umask"]))
        os.environ.clear()
        os.environ.update(request["env"])
        time.tzset()  # local time as the client's TZ says
        argv = [str(a) for a in request["argv"]]
        sys.argv = ["regless", *argv]
        _streams(request["streams"])
        import reglessbuild

        reglessbuild.IMPORTED = float(request["started"])
    except BaseException:  # noqa: BLE001 - nothing of the command has run: the client is told
        os._exit(70)
    from reglessbuild import cli

    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - as the interpreter would: the traceback, exit 1
        import traceback

        traceback.print_exc()
        code = 1
    # the command is over: a signal the client passes on now (or the server's, once the client has
    # gone) would only interrupt the report of its end
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    try:
        conn.settimeout(5.0)
        send(conn, {"exit": code})
    except OSError:
        pass
    conn.close()
    cli.end(code)


def _streams(specs: list[tuple[str, str, bool, bool]]) -> None:
    """The standard streams over the client's descriptors, set up as the client's were."""
    import io

    made: list[io.TextIOWrapper] = []
    for fd, (encoding, errors, line_buffering, write_through) in enumerate(specs):
        raw = io.FileIO(fd, "r" if fd == 0 else "w", closefd=False)
        buffer = io.BufferedReader(raw) if fd == 0 else io.BufferedWriter(raw)
        made.append(io.TextIOWrapper(buffer, encoding=encoding, errors=errors,
                                     line_buffering=line_buffering, write_through=write_through))
    sys.stdin, sys.stdout, sys.stderr = made


def main(argv: list[str]) -> int:
    """`python -P -m reglessbuild.warm.server PACKAGE FOLDER [IDLE]`: serve until idle, or give up at once
    where another server holds this install's lock, or PACKAGE is not this package, or FOLDER cannot
    be used."""
    # only the standard streams (/dev/null) are this process's: files the starting command inherited
    # (a shell's lock, a pipe's end) must not stay open here, nor in every child, for the idle time
    os.closerange(3, os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") > 0 else 65536)
    if len(argv) < 2 or argv[0] != package():
        return 2
    try:
        idle = float(argv[2]) if len(argv) > 2 and argv[2] else IDLE_SECONDS
    except ValueError:
        idle = IDLE_SECONDS
    os.chdir("/")
    where = folder(argv[1])
    if where is None:
        return 1
    name = identity()
    lock_fd = os.open(where.lock(name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock_fd)
        return 0  # another server of this install runs
    path = where.socket(name)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    # the package's files as they were before importing them: an edit made while they are imported
    # makes the first request find this server stale, rather than go unseen
    before = _package_files()
    preimport()
    files = {**snapshot(), **before}
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    gc.collect()
    gc.freeze()  # the children's copies of what was imported are not walked again
    Server(where, listener, lock_fd, idle, files).loop()
    return 0


def _package_files() -> dict[str, tuple[int, int]]:
    """The stamp of every file in the package's folder, before any is imported."""
    out: dict[str, tuple[int, int]] = {}
    for top, dirs, names in os.walk(package()):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        out.update((path, _stamp(path)) for path in (os.path.join(top, n) for n in names))
    return out


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

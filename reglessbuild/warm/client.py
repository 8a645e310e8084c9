"""The client's side of the warm server: hand a command line to the server, pass on the signals the
terminal sends, and end as its child ended; or start a server for the next command line."""

from __future__ import annotations

import os
import signal
import socket
import sys

from . import ENV, IDLE_ENV
from .wire import context, folder, identity, package, recv, send

# mypy reads this name as typing.TYPE_CHECKING; typing itself is not imported by the client
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ask", "run", "start"]

# what the terminal or a supervisor sends the command: the child gets it instead (SIGTSTP stops the
# client only; the child, in the server's session, goes on)
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
             signal.SIGWINCH)


def _streams() -> list[tuple[str, str, bool, bool]] | None:
    """How this process's standard streams are set up (the child makes its own the same), or None
    where one is missing: such a command line runs here."""
    specs = []
    for fd, stream in enumerate((sys.stdin, sys.stdout, sys.stderr)):
        try:
            os.fstat(fd)
        except OSError:
            return None
        if stream is None:
            return None
        specs.append((str(stream.encoding), str(stream.errors or "strict"), bool(stream.line_buffering),
                      bool(getattr(stream, "write_through", False))))
    return specs


def run(argv: list[str], started: float) -> int | None:
    """The exit code of `argv` run by this install's warm server; None where none answers (or it
    stepped aside): the caller then runs the command line itself. `started` is when this process's
    regless began (the child's phases count from it)."""
    where = folder()
    streams = _streams()
    if where is None or streams is None:
        return None
    try:
        cwd = os.getcwd()
    except OSError:  # a folder removed under the shell: the command says so itself
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(where.socket(identity()))
    except OSError:
        sock.close()
        return None
    umask = os.umask(0o022)
    os.umask(umask)
    request = {"kind": "run", "argv": argv, "cwd": cwd, "env": dict(os.environ), "umask": umask,
               "started": started, "streams": streams, "exe": sys.executable, "package": package(),
               "context": context()}
    # a signal that comes before the child is known waits, then goes to it
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
    try:
        send(sock, request, [0, 1, 2])
        reply = recv(sock)
    except OSError:
        reply = None
    if not isinstance(reply, dict) or "pid" not in reply:
        sock.close()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
        return None
    child = int(reply["pid"])

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for signum in FORWARDED:
        signal.signal(signum, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
    try:
        end = recv(sock)
    except OSError:
        end = None
    if not isinstance(end, dict) or "exit" not in end:
        print("regless: error: the warm server ended before the command did; run it again, or with "
              f"{ENV}=0 to run it without the server", file=sys.stderr)
        return 1
    code = int(end["exit"])
    if code < 0:  # the child was killed by a signal: so is this process, as the shell expects
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code
    return code


def start() -> None:
    """Start this install's warm server in the background, detached from this process's session and
    streams; it gives up by itself where one is already running."""
    where = folder()
    if where is None:
        return
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        os.posix_spawn(sys.executable, [sys.executable, "-P", "-m", "reglessbuild.warm.server", package(),
                                        os.environ.get(IDLE_ENV, "")],
                       os.environ, setsid=True,
                       file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
                                     (os.POSIX_SPAWN_DUP2, devnull, 2)])
    except OSError:
        pass
    finally:
        os.close(devnull)


def ask(kind: str) -> dict[str, Any] | None:
    """The answer of this install's server to `status` or `stop`; None where none runs."""
    where = folder()
    if where is None:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(5.0)
        sock.connect(where.socket(identity()))
        send(sock, {"kind": kind})
        reply = recv(sock)
    except OSError:
        return None
    finally:
        sock.close()
    return reply if isinstance(reply, dict) else None

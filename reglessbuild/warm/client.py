"""The client's side of the warm server: hand a command line to the server, pass on the signals the
terminal sends, and end as its child ended; or start a server for the next command line."""

from __future__ import annotations

import os
import signal
import socket
import struct
import sys

from . import ENV, IDLE_ENV
from .wire import FORWARDED, context, folder, identity, package, recv, restore_signals, send

# mypy reads this name as typing.TYPE_CHECKING; typing itself is not imported by the client
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ask", "run", "start"]

HANDSHAKE_SECONDS = 10.0  # a server that does not fork a child by then is not waited for


class _Cancelled(Exception):
    """A signal came before the child was known: the command is cancelled before it ran."""


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


def _connect(timeout: float) -> socket.socket | None:
    """A connection to this install's server, checked to be this user's; None where none answers."""
    where = folder()
    if where is None:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(where.socket(identity()))
        _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                              struct.calcsize("3i")))
        if uid != os.getuid():  # the folder is this user's; its socket must be too
            raise OSError("the server is another user's")
    except OSError:
        sock.close()
        return None
    return sock


def run(argv: list[str], started: float) -> int | None:
    """The exit code of `argv` run by this install's warm server; None where none answers (or it
    stepped aside, or serves another context): the caller then runs the command line itself. `started`
    is when this process's regless began (the child's phases count from it)."""
    streams = _streams()
    if streams is None:
        return None
    try:
        cwd = os.getcwd()
    except OSError:  # a folder removed under the shell: the command says so itself
        return None
    sock = _connect(HANDSHAKE_SECONDS)
    if sock is None:
        return None
    umask = os.umask(0o022)
    os.umask(umask)
    ignored = [int(s) for s in FORWARDED if signal.getsignal(s) == signal.SIG_IGN]  # e.g. SIGHUP under nohup
    request = {"kind": "run", "argv": argv, "cwd": cwd, "env": dict(os.environ), "umask": umask,
               "started": started, "streams": streams, "exe": sys.executable, "package": package(),
               "context": context(), "ignored": ignored}
    child: list[int] = []  # the child's pidfd, once known

    def forward(signum: int, _frame: object) -> None:
        if not child:
            if signum in (signal.SIGWINCH, signal.SIGCONT):
                return
            raise _Cancelled(signum)
        try:
            if signum == signal.SIGTSTP:
                signal.pidfd_send_signal(child[0], signal.SIGSTOP)
                signal.signal(signal.SIGTSTP, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTSTP)  # stops here; SIGCONT resumes this line
                signal.signal(signal.SIGTSTP, forward)
                signal.pidfd_send_signal(child[0], signal.SIGCONT)
            else:
                signal.pidfd_send_signal(child[0], signum)
        except ProcessLookupError:
            pass

    for signum in FORWARDED:
        if signum not in ignored:
            signal.signal(signum, forward)
    try:
        send(sock, request)
        if recv(sock) != {"ready": True}:
            raise OSError("not served")  # stepped aside, or another context: nothing ran
        # the standard streams go only to a server that has taken the command line: a server that does
        # not answer is not left holding this process's pipes
        send(sock, {"streams": 3}, [0, 1, 2])
        reply = recv(sock)
        if not isinstance(reply, dict) or "pid" not in reply:
            raise OSError("not served")
        child.append(os.pidfd_open(int(reply["pid"])))
    except _Cancelled as exc:
        # the server, if it forked a child at all, finds this connection closed: the child ends unrun
        sock.close()
        print("regless: cancelled", file=sys.stderr)
        return 128 + int(exc.args[0])
    except OSError:
        sock.close()
        restore_signals(ignored)
        return None
    sock.settimeout(None)
    try:
        end = recv(sock)
    except OSError:
        end = None
    if not isinstance(end, dict) or "exit" not in end:
        print("regless: error: the warm server ended before the command did; run it again, or with "
              f"{ENV}=0 to run it without the server", file=sys.stderr)
        return 1
    code = int(end["exit"])
    if code < 0:  # the child was killed by a signal: so is this process, as a shell expects
        if -code not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code
    return code


def start() -> None:
    """Start this install's warm server in the background, detached from this process's session,
    streams and other open files; it gives up by itself where one is already running."""
    where = folder()
    if where is None:
        return
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        os.posix_spawn(sys.executable, [sys.executable, "-P", "-m", "reglessbuild.warm.server", package(),
                                        where.path, os.environ.get(IDLE_ENV, "")],
                       os.environ, setsid=True,
                       file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
                                     (os.POSIX_SPAWN_DUP2, devnull, 2)])
    except OSError:
        pass
    finally:
        os.close(devnull)


def ask(kind: str) -> dict[str, Any] | None:
    """The answer of this install's server to `status` or `stop`; None where none runs."""
    sock = _connect(5.0)
    if sock is None:
        return None
    try:
        send(sock, {"kind": kind})
        reply = recv(sock)
    except OSError:
        return None
    finally:
        sock.close()
    return reply if isinstance(reply, dict) else None

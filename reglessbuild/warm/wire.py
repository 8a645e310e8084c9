"""What the warm server's client and server share: where the socket is, and how a message is framed.
It imports only what the client needs anyway to talk to the server."""


from __future__ import annotations

import marshal
import os
import signal
import socket
import sys
import zlib

# mypy reads this name as typing.TYPE_CHECKING; typing itself is not imported by the client
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["FORWARDED", "MAX_SOCKET_PATH", "Folder", "context", "folder", "identity", "package", "place", "recv",
           "refusal", "restore_signals", "send"]
MAX_SOCKET_PATH = 107  # bytes of a Unix socket's path on Linux (sun_path, less its final NUL)
_MAX_FRAME = 16 << 20
# what the terminal or a supervisor sends a command: the client passes each on to its child. Ctrl-Z
# (SIGTSTP) stops the child (SIGSTOP: it is in no terminal's session) and then the client; SIGCONT goes on
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
             signal.SIGWINCH, signal.SIGTSTP, signal.SIGCONT)


def restore_signals(ignored: list[int]) -> None:
    """The forwarded signals as a new Python process has them: ignored where `ignored` says (as the
    client had them: SIGHUP under nohup), else the default (SIGINT: KeyboardInterrupt)."""
    for signum in FORWARDED:
        if signum in ignored:
            signal.signal(signum, signal.SIG_IGN)
        else:
            signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)


def package() -> str:
    """The folder of this regless package: a server of another (another install, a PYTHONPATH) is not it."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def context() -> dict[str, Any]:
    """What a process takes from where it was started and a forked child cannot take from its client:
    resource limits, groups, nice value, cgroup, namespaces and root folder. A server serves only a
    client whose context is its own (it started in the client's first, inherited all of it)."""
    import resource

    limits = {name: resource.getrlimit(getattr(resource, name)) for name in dir(resource)
              if name.startswith("RLIMIT_")}
    namespaces = {}
    for ns in ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts"):
        try:
            namespaces[ns] = os.readlink(f"/proc/self/ns/{ns}")
        except OSError:
            namespaces[ns] = ""
    try:
        with open("/proc/self/cgroup", "rb") as f:
            cgroup = f.read()
    except OSError:
        cgroup = b""
    root = os.stat("/")
    return {"limits": limits, "groups": sorted(os.getgroups()), "gid": os.getgid(),
            "nice": os.getpriority(os.PRIO_PROCESS, 0), "cgroup": cgroup, "namespaces": namespaces,
            "root": (root.st_dev, root.st_ino)}


def identity() -> str:
    """This install, as a server's name: the interpreter and the package folder (crc32, not secret)."""
    from .. import __version__

    key = "\0".join((sys.executable, package(), __version__))
    return f"{zlib.crc32(key.encode()):08x}"


class Folder:
    """The user's folder of warm servers: created 0700; refused where another user owns it or others
    may write in it (a socket there would be someone else's)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def socket(self, name: str) -> str:
        """Where the server of install `name` listens."""
        return os.path.join(self.path, f"{name}.sock")

    def lock(self, name: str) -> str:
        """The file whose lock the server of install `name` holds while it takes requests."""
        return os.path.join(self.path, f"{name}.lock")


def place(environ: os._Environ[str] | dict[str, str] | None = None) -> str:
    """Where the user's folder of warm servers is: under $TMPDIR (made absolute), else /tmp."""
    env = os.environ if environ is None else environ
    return os.path.join(os.path.abspath(env.get("TMPDIR") or "/tmp"), f"regless-warm-{os.getuid()}")


def refusal(path: str) -> str | None:
    """Why the folder of warm servers at `path` cannot be used (made where missing), or None."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        return f"cannot make {path}: {exc.strerror}"
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    import stat

    if not stat.S_ISDIR(st.st_mode):
        return f"{path} is not a folder"
    if st.st_uid != os.getuid():
        return f"{path} belongs to another user"
    if st.st_mode & 0o077:
        return f"others may use {path} (mode {stat.S_IMODE(st.st_mode):o}, not 700)"
    if len(os.fsencode(Folder(path).socket(identity()))) > MAX_SOCKET_PATH:
        return f"a socket's path under {path} is longer than {MAX_SOCKET_PATH} bytes (TMPDIR is too long)"
    return None


def folder(path: str | None = None) -> Folder | None:
    """The user's folder of warm servers (at `path`, else its `place`); None where it cannot be used."""
    path = place() if path is None else path
    return None if refusal(path) else Folder(path)


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    """One framed message (marshal: both ends are the same interpreter), with `fds` passed along."""
    body = marshal.dumps(message)
    data = len(body).to_bytes(4, "big") + body
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.sendall(data)


def recv(sock: socket.socket, fds: list[int] | None = None) -> object:
    """One framed message; None where the other end closed first. File descriptors sent with it are
    appended to `fds`."""
    data = b""
    while len(data) < (want := 4 if len(data) < 4 else 4 + int.from_bytes(data[:4], "big")):
        if want > _MAX_FRAME + 4:
            raise ValueError("warm server: message too large")
        if fds is not None and not data:  # the descriptors come with the frame's first bytes
            chunk, got, _flags, _addr = socket.recv_fds(sock, want, 3)
            fds.extend(got)
        else:
            chunk = sock.recv(want - len(data))
        if not chunk:
            return None
        data += chunk
    return marshal.loads(data[4:])

"""The one place regless starts subprocesses: argv lists only, a kept stderr tail, group kill, detached housekeeping.

Each child runs in its own session so that cancelling regless can stop the child
and everything it started (buildah's own children included).

Adapters and the orchestration are handed a `Processes` (the seam) rather than calling this module's
functions: `LOCAL` is the real one; a test may pass a fake that records argv lists and answers
recorded tool output.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .errors import ToolMissing

TAIL_LINES = 30

_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()


@dataclass(frozen=True)
class Completed:
    """A finished tool call: its exit status, stdout, and the tail (and, from `run`, all) of stderr."""

    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    tail: tuple[str, ...]  # last lines of stderr (or of the merged stream)
    log: str = ""  # all of stderr (run only): a tool's debug log, read for what the tail may miss

    @property
    def ok(self) -> bool:
        """It exited 0."""
        return self.returncode == 0

    @property
    def stderr_text(self) -> str:
        """The kept tail as one text, what fault classification reads."""
        return "\n".join(self.tail)


def _spawn(argv: Sequence[str], env: dict[str, str] | None, merged: bool, install_hint: str) -> subprocess.Popen[bytes]:
    try:
        p = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merged else subprocess.PIPE,
            env=env, start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise ToolMissing(f"{argv[0]} not found on PATH", hint=install_hint) from exc
    with _live_lock:
        _live.add(p)
    return p


def _forget(p: subprocess.Popen[bytes]) -> None:
    with _live_lock:
        _live.discard(p)


def run(argv: Sequence[str], *, env: dict[str, str] | None = None, timeout: float | None = None,
        install_hint: str = "") -> Completed:
    """Run to completion, capturing stdout and the stderr tail."""
    p = _spawn(argv, env, False, install_hint)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(p)
        out, err = p.communicate()
        err += f"\nregless: timed out after {timeout} s".encode()
    finally:
        _forget(p)
    text = err.decode("utf-8", "replace")
    lines = text.splitlines()
    return Completed(tuple(argv), p.returncode, out, tuple(lines[-TAIL_LINES:]), text)


def stream(argv: Sequence[str], on_line: Callable[[str], None], *, env: dict[str, str] | None = None,
           install_hint: str = "", aside: Callable[[str], bool] | None = None) -> Completed:
    """Run with stdout and stderr merged, handing each line to `on_line` as it comes. A line that
    `aside` takes (returns true for) goes to it alone: neither shown nor kept in the tail (a tool's
    debug log, read for one fact)."""
    p = _spawn(argv, env, True, install_hint)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        assert p.stdout is not None
        for raw in p.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if aside is not None and aside(line):
                continue
            tail.append(line)
            on_line(line)
        p.wait()
    finally:
        _forget(p)
    return Completed(tuple(argv), p.returncode, b"", tuple(tail))


def detach(argv: Sequence[str], *, keep_fd: int = -1) -> bool:
    """Start `argv` and leave it running after this process: housekeeping the run does not wait for.

    Its own session (no terminal's Ctrl-C reaches it), stdin, stdout and stderr to /dev/null (a caller
    reading this process's output, a pipe, is not kept waiting for it) and not in the table of children
    that a cancel stops (terminate_all). `keep_fd`, where given, stays open in it: a lock it then holds
    until it exits (an flock belongs to the open file, which the two processes share). Whether it started
    (a tool not found starts nothing, and is no error here)."""
    try:
        subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True, pass_fds=(keep_fd,) if keep_fd >= 0 else ())
    except OSError:
        return False
    return True


def _kill_group(p: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def terminate_all(grace: float = 5.0) -> None:
    """Stop every live child and its whole process group: SIGTERM, then SIGKILL after `grace`."""
    with _live_lock:
        procs = list(_live)
    for p in procs:
        _kill_group(p, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _kill_group(p, signal.SIGKILL)


class Processes(Protocol):
    """The subprocess seam: what adapters and the orchestration need to start and stop tools."""

    def run(self, argv: Sequence[str], *, env: dict[str, str] | None = None, timeout: float | None = None,
            install_hint: str = "") -> Completed:
        """Run to completion, capturing stdout and stderr (see proc.run)."""
        ...

    def stream(self, argv: Sequence[str], on_line: Callable[[str], None], *, env: dict[str, str] | None = None,
               install_hint: str = "", aside: Callable[[str], bool] | None = None) -> Completed:
        """Run with the output handed over line by line (see proc.stream)."""
        ...

    def terminate_all(self, grace: float = 5.0) -> None:
        """Stop every tool still running (a cancelled run)."""
        ...


class Local:
    """The real Processes: this module's functions, on this machine."""

    def run(self, argv: Sequence[str], *, env: dict[str, str] | None = None, timeout: float | None = None,
            install_hint: str = "") -> Completed:
        """proc.run."""
        return run(argv, env=env, timeout=timeout, install_hint=install_hint)

    def stream(self, argv: Sequence[str], on_line: Callable[[str], None], *, env: dict[str, str] | None = None,
               install_hint: str = "", aside: Callable[[str], bool] | None = None) -> Completed:
        """proc.stream."""
        return stream(argv, on_line, env=env, install_hint=install_hint, aside=aside)

    def terminate_all(self, grace: float = 5.0) -> None:
        """proc.terminate_all."""
        terminate_all(grace)


LOCAL = Local()

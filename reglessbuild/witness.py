"""What a run of `regless build` read, so that a later run can tell, cheaply, that none of it changed.

A no-change restart reads the same config, Dockerfiles, ignore files and input files, lists the same
folders and gets the same answers from the registry, and so comes to the same results. The Witness
collects those reads while a run goes (replay.py keeps them, with the results, once the run is over and
did nothing but find its images; a later run with the same command line and environment that finds
every one of them unchanged prints those results again instead of hashing anew):

- every file Python opens for reading, found or not (an audit hook: a read added anywhere later is
  witnessed without anyone remembering to say so), and the folder holding it;
- every folder the hashing walks and every input file it hashes (hashing/inputs.py tells it);
- every registry answer (registry.Reliable tells it: the reference and the digest found, or none);
- anything that makes a run's result depend on more than those: a subprocess started, a write to the
  registry, the clock (Skaffold's dateTime tags), ignore rules with exceptions (whose walks visit
  folders the listing does not show). Such a run is not kept.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

_current: Witness | None = None
_hooked = False


class Witness:
    """The reads of one run (see the module's doc). `spoiled` says why the run cannot be replayed."""

    def __init__(self) -> None:
        self.opened: set[str] = set()  # files opened for reading (absolute), found or not
        self.listed: set[str] = set()  # folders listed: by the walk, os.listdir / os.scandir, or holding an opened file
        self.inputs: set[str] = set()  # input files hashed (absolute; a symlink is itself, not its target)
        # (registry, repository, tag or digest, the digest it is pinned to) -> the digest the registry
        # answered (None: not there)
        self.answers: dict[tuple[str, str, str, str | None], str | None] = {}
        self.index_reads: set[tuple[str, bytes]] = set()  # (table, key) of the index entries read (index.WITNESSED)
        self.spoiled: str | None = None
        self.cwd = os.getcwd()
        self.listed.add(self.cwd)  # where the config is looked for
        self.started_ns = time.time_ns()

    def spoil(self, why: str) -> None:
        """The run's result depends on something not witnessed: it is not kept."""
        if self.spoiled is None:
            self.spoiled = why

    def answer(self, ref: Any, digest: str | None) -> None:
        """The registry answered `digest` (None: no such image) for `ref` (a refs.ImageRef); "write" or
        "pull" for another request."""
        if digest is not None and not digest.startswith("sha256:"):
            self.spoil(f"it made a registry {digest} ({ref})")
            return
        reference = (ref.registry, ref.repository, ref.digest or ref.tag or "", ref.digest)
        if self.answers.setdefault(reference, digest) != digest:
            self.spoil(f"{ref} answered two digests in one run")

    def _path(self, path: Any) -> str | None:
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not isinstance(path, str):
            return None  # a file descriptor: opened before, by path
        return os.path.normpath(os.path.join(self.cwd, path))

    def _audit(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = args
            if mode is None:  # os.open: flags only
                writes = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
            else:
                writes = any(c in mode for c in "wax+")
            p = self._path(path)
            if p is None or writes or p.startswith(("/proc/", "/dev/", "/sys/")):
                return
            self.opened.add(p)
            self.listed.add(os.path.dirname(p))
        elif event in ("os.listdir", "os.scandir"):
            if (p := self._path(args[0] if args[0] is not None else ".")) is not None:
                self.listed.add(p)
        elif event == "subprocess.Popen":
            self.spoil(f"it ran {os.path.basename(str(args[0]))}")
        elif event in ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork"):
            self.spoil(f"it started a process ({event})")


def start() -> Witness:
    """Witness this process's reads from now on, in a new Witness (the audit hook, which cannot be
    removed, is added once a process and idles between witnesses)."""
    global _current, _hooked
    _current = Witness()
    if not _hooked:
        sys.addaudithook(_dispatch)
        _hooked = True
    return _current


# the events Witness._audit looks at: the hook sees every audit event of the process (each import's, each
# id() and sys._getframe() call), so it passes on only these
_AUDITED = frozenset({"open", "os.listdir", "os.scandir", "subprocess.Popen", "os.system", "os.exec",
                      "os.posix_spawn", "os.spawn", "os.fork"})


def _dispatch(event: str, args: tuple[Any, ...]) -> None:
    if event in _AUDITED and (w := _current) is not None:
        w._audit(event, args)


def current() -> Witness | None:
    """The Witness of this run, if one was started."""
    return _current


def stop() -> None:
    """Witness nothing more (the hook stays, idle)."""
    global _current
    _current = None

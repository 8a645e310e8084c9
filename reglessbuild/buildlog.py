"""The builder's full output, kept in one file per artifact per run, so that the screen can stay folded.

A person sees one live line per running artifact (console.py); what buildah or kaniko printed is
written here as it comes and shown in full only when asked (-v) or when the artifact failed (its
last lines inline, the path for the rest). Run folders are named by start time and pid, and only
the newest KEEP are kept: the folder never grows without bound.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import deque
from pathlib import Path
from typing import TextIO

KEEP = 20  # run folders kept under logs/
TAIL = 30  # lines shown inline on failure
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_name(artifact: str) -> str:
    """An artifact name (`gcr.io/team/app`) as a file name (`gcr.io_team_app.log`)."""
    return _UNSAFE.sub("_", artifact).strip("._") + ".log" if artifact.strip("._/") else "artifact.log"


class BuildLogs:
    """One run's log folder under `root` (created on the first line written); thread-safe."""

    def __init__(self, root: Path, *, now: float | None = None) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
        self.root = root
        self.folder = root / f"{stamp}-{os.getpid()}"
        self._files: dict[str, TextIO] = {}
        self._lock = threading.Lock()
        self._failed = False  # a folder that could not be made: logging stops, the build goes on

    def path(self, artifact: str) -> Path | None:
        """The artifact's log file, if anything was written to it in this run."""
        with self._lock:
            return self.folder / file_name(artifact) if artifact in self._files else None

    def write(self, artifact: str, line: str) -> None:
        """Append a line of the artifact's tool output, flushed at once (a user may be following the file).
        The folder is made, and old runs' folders pruned, on the first line; where that fails the build goes
        on without logs."""
        with self._lock:
            f = self._files.get(artifact)
            if f is None:
                if self._failed:
                    return
                try:
                    if not self.folder.exists():
                        self.folder.mkdir(parents=True, exist_ok=True)
                        prune(self.root, KEEP)
                    f = open(self.folder / file_name(artifact), "a", encoding="utf-8")
                except OSError:
                    self._failed = True
                    return
                self._files[artifact] = f
            f.write(line + "\n")
            f.flush()

    def tail(self, artifact: str, lines: int = TAIL) -> list[str]:
        """The last `lines` lines of the artifact's log: what a failure shows inline (BuildError.tail)."""
        p = self.path(artifact)
        if p is None:
            return []
        with open(p, encoding="utf-8", errors="replace") as f:
            return [ln.rstrip("\n") for ln in deque(f, maxlen=lines)]

    def close(self) -> None:
        """Close every file this run opened (the run's end)."""
        with self._lock:
            for f in self._files.values():
                f.close()


def prune(root: Path, keep: int) -> None:
    """Remove all but the `keep` newest run folders (by name: they start with the run's time)."""
    try:
        runs = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.name)
    except OSError:
        return
    for old in runs[:-keep] if keep > 0 else runs:
        import shutil  # (and its compression modules) only where old logs go: a replay writes no log

        shutil.rmtree(old, ignore_errors=True)

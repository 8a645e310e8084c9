"""The live text interface: events in, lines out. Results go to stdout, everything else to stderr.

On a terminal (and unless -q) a one-line progress display on stderr shows the work
under way (hashing, builds running, with elapsed time); it is cleared before any
other line is printed, so it never mixes into the log. Outcome words are coloured
when stdout is a terminal and NO_COLOR is unset.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TextIO

from .events import Event
from .report import ArtifactResult

COLOURS = {"cached": "34", "retagged": "36", "built": "32", "failed": "31", "skipped": "33", "build": "32"}
TICK = 0.5


class Console:
    def __init__(self, out: TextIO, err: TextIO, *, quiet: bool = False, verbose: bool = False,
                 json_output: bool = False) -> None:
        self.out, self.err = out, err
        self.quiet, self.verbose, self.json = quiet, verbose, json_output
        self.colour = out.isatty() and not os.environ.get("NO_COLOR")
        self.live = err.isatty() and not quiet
        self.lock = threading.RLock()
        self.width = 0
        self.status = ""  # what the progress line shows now
        self.hashing: tuple[str, int, int] | None = None
        self.building: dict[str, float] = {}
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    # -------------------------------------------------- output primitives

    def paint(self, word: str) -> str:
        text = f"{word:<8}"
        return f"\033[{COLOURS[word]}m{text}\033[0m" if self.colour and word in COLOURS else text

    def _print(self, text: str, stream: TextIO) -> None:
        with self.lock:
            if self.status:
                self.err.write("\r\033[K")
            stream.write(text + "\n")
            stream.flush()
            self._draw()

    def _draw(self) -> None:
        if not self.live:
            return
        parts = []
        if self.hashing:
            name, files, size = self.hashing
            parts.append(f"hashing {name}: {files} files, {size / 1e6:.0f} MB")
        if self.building:
            now = time.monotonic()
            parts.append("building " + ", ".join(f"{n} {now - t:.0f}s" for n, t in self.building.items()))
        status = " · ".join(parts)[: 200]
        if status or self.status:
            self.err.write("\r\033[K" + status)
            self.err.flush()
        self.status = status

    def _tick(self) -> None:
        while not self._stop.wait(TICK):
            with self.lock:
                self._draw()

    def close(self) -> None:
        self._stop.set()
        with self.lock:
            self.hashing, self.building = None, {}
            self._draw()

    # -------------------------------------------------- events

    def __call__(self, ev: Event) -> None:
        with self.lock:
            self._handle(ev)

    def _handle(self, ev: Event) -> None:
        tag = f"[{ev.artifact}] " if ev.artifact else ""
        if ev.kind == "progress":
            self.hashing = (ev.artifact or "", int(ev.data["files"]), int(ev.data["bytes"]))  # type: ignore[call-overload]
            self._draw()
        elif ev.kind == "hashed":
            self.hashing = None
            self._draw()
        elif ev.kind == "line":
            if not self.quiet:
                self._print(f"{tag}{ev.message}", self.err)
        elif ev.kind in ("build", "retag", "push", "tag"):
            if ev.kind == "build":
                self.building[ev.artifact or ""] = time.monotonic()
                if self.live and self._ticker is None:
                    self._ticker = threading.Thread(target=self._tick, daemon=True)
                    self._ticker.start()
            if not self.quiet:
                self._print(f"{tag}{ev.message}", self.err)
        elif ev.kind == "wait":  # --share: an artifact another share builds
            self._print(f"{tag}{ev.message}", self.err)
        elif ev.kind == "warning":
            self._print(f"warning: {tag}{ev.message}", self.err)
        elif ev.kind == "outcome":
            self.building.pop(ev.artifact or "", None)
            if not self.json:
                self.result_line(ev.data["result"])  # type: ignore[arg-type]
            else:
                self._draw()

    def result_line(self, r: ArtifactResult) -> None:
        secs = sum(v for k, v in r.seconds.items() if k != "hash")
        line = f"{self.paint(r.outcome)} {r.name:<{self.width}}  {r.reference}"
        if r.outcome == "retagged" and r.source:
            line += f"  (from {r.source})"
        if r.outcome == "built":
            line += f"  ({secs:.1f}s)"
        if self.verbose and r.reason and r.outcome == "built":
            line += f"  — {r.reason}" + "".join(f"\n         because {w}" for w in r.why)
        if r.error:
            line += f"\n         error: {r.error}" + "".join(f"\n         | {t}" for t in r.tail)
        self._print(line, self.out)

    def line(self, text: str) -> None:
        self._print(text, self.out)

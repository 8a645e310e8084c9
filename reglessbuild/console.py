"""The live text interface: events in, lines out. Results go to stdout, everything else to stderr.

The builder's output is folded: it goes to a log file per artifact (buildlog.py) and is shown in
full only with -v. On a terminal (unless -q) a live area at the bottom of stderr shows one line per
running artifact (its phase, elapsed time and the builder's current step), the hashing under way and
any registry operation being retried; it is cleared before any other line is printed, so it never
mixes into what stays on the screen. In a log (stderr not a terminal) an artifact that does work gets
one line when it starts and one when it ends. A failure prints its last builder lines and the log's
path at once. Result lines are printed by `results`, in the order given (the config's), once all the
work is done. Outcome words are coloured when stdout is a terminal and NO_COLOR is unset.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

from .buildlog import TAIL, BuildLogs
from .events import Event
from .outcomes import Outcome
from .report import ArtifactResult

COLOURS: dict[str, str] = {Outcome.CACHED: "34", Outcome.RETAGGED: "36", Outcome.BUILT: "32", Outcome.FAILED: "31",
                           Outcome.SKIPPED: "33"}
TICK = 0.5
SHORT_DIGEST = 12  # hex digits of a digest in a result line on a terminal
# the builder's lines: patterns compiled by `re` (and kept in its cache) at the first line, once a builder
# runs, not while regless starts
_STEP = r"^(STEP \d+(/\d+)?:|INFO\[\d+\] )"  # buildah's and kaniko's step lines
_BUILT = r"^(Successfully tagged |[0-9a-f]{64}$|INFO\[\d+\] Pushing image)"  # build done: pushing next


@dataclass
class _Running:
    phase: str  # building | pushing | retagging
    started: float
    step: str = ""


def retry_text(data: dict[str, object]) -> str:
    """`registry H: what failed, retrying in Ns (Ms of Ts)` from a retry event's data."""
    wait, elapsed, deadline = (float(data[k]) for k in ("wait", "elapsed", "deadline"))  # type: ignore[arg-type]
    w = f"{wait:.1f}s" if wait < 10 else f"{wait:.0f}s"
    return (f"registry {data['registry']}: {data['error']}, retrying in {w} "
            f"({elapsed:.0f}s of {deadline:g}s)")


class Console:
    """The user interface of one run: a Sink of events (the live area, log lines, warnings) and the
    printer of a command's results; `close` clears the live area before the results are printed."""

    def __init__(self, out: TextIO, err: TextIO, *, quiet: bool = False, verbose: bool = False,
                 json_output: bool = False, logs: BuildLogs | None = None) -> None:
        self.out, self.err = out, err
        self.quiet, self.verbose, self.json = quiet, verbose, json_output
        self.logs = logs
        self.colour = out.isatty() and not os.environ.get("NO_COLOR")
        self.live = err.isatty() and not quiet
        self.lock = threading.RLock()
        self.width = 0
        self.warned: list[tuple[str | None, str]] = []  # the same, as events: (artifact, message)
        self.drawn = 0  # lines of the live area now on the screen
        self.hashing: tuple[str, int, int] | None = None
        self.running: dict[str, _Running] = {}
        self.waiting: dict[str, tuple[str, float]] = {}  # registry -> (retry text, shown until)
        self.warnings: list[str] = []  # every warning of the run, for the JSON document's `warnings`
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    # -------------------------------------------------- output primitives

    def paint(self, word: str) -> str:
        """An outcome word, padded to one width, in its colour where stdout is a terminal."""
        text = f"{word:<8}"
        return f"\033[{COLOURS[word]}m{text}\033[0m" if self.colour and word in COLOURS else text

    def _clear(self) -> None:
        if self.drawn:
            self.err.write("\r\033[K" + "\033[1A\033[K" * (self.drawn - 1))
            self.drawn = 0

    def _print(self, text: str, stream: TextIO) -> None:
        with self.lock:
            self._clear()
            self.err.flush()
            stream.write(text + "\n")
            stream.flush()
            self._draw()

    def _columns(self) -> int:
        try:
            columns = os.get_terminal_size(self.err.fileno()).columns
        except (OSError, ValueError, AttributeError):
            return 80
        return max(20, columns) if columns else 80  # a pseudo-terminal without a size says 0

    def _area(self) -> list[str]:
        now = time.monotonic()
        lines = []
        if self.hashing:
            name, files, size = self.hashing
            lines.append(f"hashing  {name}: {files} files, {size / 1e6:.0f} MB")
        for name, r in self.running.items():
            lines.append(f"{r.phase:<9}{name:<{self.width}}  {now - r.started:4.0f}s  {r.step}".rstrip())
        for reg, (text, until) in list(self.waiting.items()):
            if now > until:
                del self.waiting[reg]
            else:
                lines.append(f"waiting  {text}")
        return lines

    def _draw(self) -> None:
        if not self.live:
            return
        self._clear()
        lines = self._area()
        if lines:
            cut = self._columns() - 1
            self.err.write("\n".join(ln[:cut] for ln in lines))
            self.drawn = len(lines)
        self.err.flush()

    def _tick(self) -> None:
        while not self._stop.wait(TICK):
            with self.lock:
                self._draw()

    def _start_ticker(self) -> None:
        if self.live and self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()

    def close(self) -> None:
        """Stop the live area and clear it (and close the build logs): the work is done."""
        self._stop.set()
        with self.lock:
            self.hashing, self.running, self.waiting = None, {}, {}
            self._clear()
            self.err.flush()
        if self.logs:
            self.logs.close()

    # -------------------------------------------------- events

    def __call__(self, ev: Event) -> None:
        """Take one event of the core (from any thread)."""
        with self.lock:
            self._handle(ev)

    def _say(self, text: str) -> None:
        """A line for a log (stderr not a terminal), unless -q."""
        if not self.live and not self.quiet:
            self._print(text, self.err)

    def _handle(self, ev: Event) -> None:
        name = ev.artifact or ""
        tag = f"[{name}] " if name else ""
        if ev.kind == "progress":
            self.hashing = (name, int(ev.data["files"]), int(ev.data["bytes"]))  # type: ignore[call-overload]
            self._start_ticker()
        elif ev.kind == "hashed":
            self.hashing = None
            self._draw()
        elif ev.kind in ("build", "retag"):
            self.running[name] = _Running("building" if ev.kind == "build" else "retagging", time.monotonic())
            self._start_ticker()
            if self.logs:
                self.logs.write(name, f"regless: {ev.message}")
            self._say(f"{tag}{ev.message}")
            self._draw()
        elif ev.kind == "line":
            self._line(name, ev.message)
        elif ev.kind in ("push", "tag"):
            if self.logs:
                self.logs.write(name, f"regless: {ev.message}")
            if self.verbose and not self.quiet:
                self._print(f"{tag}{ev.message}", self.err)
        elif ev.kind == "wait":  # --share: an artifact another share builds
            self._print(f"{tag}{ev.message}", self.err)
        elif ev.kind == "warning":
            self.warnings.append(f"{name}: {ev.message}" if name else ev.message)
            self.warned.append((ev.artifact, ev.message))
            self._print(f"warning: {tag}{ev.message}", self.err)
        elif ev.kind == "retry":
            self._retry(ev.data)
        elif ev.kind == "note":
            if self.verbose:
                self._print(f"regless: {ev.message}", self.err)
        elif ev.kind == "outcome":
            self._ended(name, ev.data["result"])  # type: ignore[arg-type]

    def _line(self, name: str, text: str) -> None:
        if self.logs:
            self.logs.write(name, text)
        if self.verbose and not self.quiet:
            self._print(f"[{name}] {text}", self.err)
        r = self.running.get(name)
        if r is None or not text.strip():
            return
        if r.phase == "building" and re.match(_BUILT, text):
            r.phase, r.step = "pushing", ""
        elif r.phase != "building" or re.match(_STEP, text):
            r.step = text.strip()

    def _retry(self, data: dict[str, object]) -> None:
        text = retry_text(data)
        if self.live:
            self.waiting[str(data["registry"])] = (text, time.monotonic() + float(data["wait"]) + 2)  # type: ignore[arg-type]
            self._start_ticker()
            self._draw()
        elif self.verbose:
            self._print(f"regless: {text}", self.err)

    def _ended(self, name: str, r: ArtifactResult) -> None:
        started = self.running.pop(name, None)
        if r.outcome is Outcome.FAILED and not self.quiet:
            self._failure(r)
        elif started is not None:
            secs = time.monotonic() - started.started
            self._say(f"[{name}] {r.outcome} in {secs:.1f}s")
        self._draw()

    def _failure(self, r: ArtifactResult) -> None:
        lines = [f"[{r.name}] failed: {r.error}"]
        log = self.logs.path(r.name) if self.logs else None
        if not self.verbose:  # with -v every line was shown as it came
            tail = self.logs.tail(r.name, TAIL) if log and self.logs else list(r.tail)
            lines += [f"  | {t}" for t in tail]
        if log:
            lines.append(f"  full builder output: {log}")
        self._print("\n".join(lines), self.err)

    # -------------------------------------------------- results

    def result_line(self, r: ArtifactResult) -> str:
        """One artifact's result for people: the outcome word, the name, the reference, and what applies."""
        secs = sum(v for k, v in r.seconds.items() if k != "hash")
        ref = r.reference if r.hash else ""
        if self.out.isatty() and r.digest:  # a person reads a short digest, as docker's short ids; scripts get it all
            ref = ref[: -len(r.digest)] + r.digest[: len("sha256:") + SHORT_DIGEST]
        line = f"{self.paint(r.outcome)} {r.name:<{self.width}}  {ref}".rstrip()
        if r.outcome is Outcome.RETAGGED and r.source:
            line += f"  (from {r.source})"
        if r.outcome is Outcome.BUILT:
            line += f"  ({secs:.1f}s)"
        if self.verbose and r.reason and r.outcome is Outcome.BUILT:
            line += f"  — {r.reason}" + "".join(f"\n         because {w}" for w in r.why)
        if r.outcome is Outcome.SKIPPED and (r.error or r.reason):
            line += f"  — {r.error or r.reason}"
        if r.outcome is Outcome.FAILED:
            line += f"\n         error: {r.error}"
            log = self.logs.path(r.name) if self.logs else None
            if log:
                line += f"\n         log: {log}"
        return line

    def results(self, results: Iterable[ArtifactResult]) -> None:
        """One line per artifact, in the order given: the config's, whatever order the work finished in."""
        for r in results:
            self._print(self.result_line(r), self.out)

    def line(self, text: str) -> None:
        """A line of a command's output on stdout (the live area kept below it)."""
        self._print(text, self.out)

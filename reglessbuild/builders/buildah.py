"""Builder adapter over buildah: `buildah build`, then `buildah push --digestfile`.

A push that fails on a transient registry fault is pushed again, never rebuilt, and a build whose
base pull failed so is run again: through retrying.py, the one retry layer (its docstring says which
layer retries what). Inside one push, containers/image tries each request without a body up to 5
times on a 429 (waiting as Retry-After says) and buildah 1.28 runs the whole copy up to 4 times
(`--retry` does not lower that: docs/registry-retries.md), `--retry-delay` apart; regless runs the
push again after that, waiting at least what the registry asked. buildah runs with
`--log-level=debug`: its containers/image lines tell that Retry-After; they are read, not shown.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import replace

from .. import proc, retrying
from ..errors import BuildError
from ..faults import Fault, classify, midway, raise_for, retry_after
from ..settings import BuildahSettings
from .buildah_cli import INSTALL_HINT, build_argv, pull_failed, push_argv, push_failed
from .protocol import BuildRequest

__all__ = ["INSTALL_HINT", "Buildah", "build_argv", "push_argv"]

class _Transient(Exception):
    """A buildah call that failed on a transient registry fault; args[0] is its Completed."""

    def __init__(self, done: proc.Completed, retry_after: float | None) -> None:
        super().__init__(done)
        self.retry_after = retry_after  # seconds the registry asked for: retrying.wait honours it
        m = re.search(_PINGED, done.stderr_text)
        self.registry = m.group(1) if m else ""  # for the notice of the next attempt

    def __str__(self) -> str:
        return self.args[0].stderr_text  # type: ignore[no-any-return]


def _debug_line(line: str) -> bool:
    return "level=debug " in line


# read in a failed call's output only: compiled by `re` (its cache) then, not while regless starts
_PINGED = r"pinging container registry ([^\s:]+(?::\d+)?)"


def _refused(done: proc.Completed, registry: str, action: str) -> None:
    """A build or push that a registry refused (TLS, credentials) fails as the registry's fault, exit 3,
    with the same words and hints as a refused check; the registry is the one buildah was talking to."""
    if classify(done.stderr_text) in (Fault.TLS, Fault.AUTH):
        m = re.search(_PINGED, done.stderr_text)
        raise_for(done.stderr_text, registry=m.group(1) if m else registry, action=action)


class Buildah:
    """The Builder port over buildah: build, push by digest file, rerun on transient registry faults."""

    name = "buildah"
    multi_platform = True  # several platforms: builders/buildah_index.py

    def __init__(self, settings: BuildahSettings, *, push_deadline: float = 60.0, push_wait: float = 0.5,
                 keep_images: bool = False, procs: proc.Processes = proc.LOCAL) -> None:
        self.settings = settings
        self.procs = procs  # the subprocess seam (proc.Processes)
        self.keep_images = keep_images  # else an image leaves buildah's storage once the run is over (storage.py)
        # the names this run's builds gave their images, removed at the run's end (not at once: another run
        # building the same inputs into the same storage may be using the same image; see storage.Claim)
        self.leftovers: list[str] = []
        self._leftovers_lock = threading.Lock()
        self.push_deadline = push_deadline  # seconds of pushing again after transient faults
        self.push_wait = push_wait

    def again(self, argv: list[str], on_line: Callable[[str], None], transient: Callable[[proc.Completed], bool]
              ) -> proc.Completed:
        """Run `argv`, again while it fails on a transient registry fault, within the push deadline."""

        def once() -> proc.Completed:
            debug: list[str] = []

            def aside(line: str) -> bool:
                if not _debug_line(line):
                    return False
                if "Retry-After" in line:
                    debug.append(line)
                return True

            done = self.procs.stream(argv, on_line, install_hint=INSTALL_HINT, aside=aside)
            if not done.ok and transient(done):
                raise _Transient(done, retry_after("\n".join(debug)))
            return done

        def said(n: retrying.Notice) -> None:  # into the log and the live line: waiting is never silent
            where = f" at registry {n.registry}" if n.registry != "?" else ""
            on_line(f"regless: buildah {argv[3]} failed{where} ({n.error}), trying again in {n.wait:.1f}s "
                    f"({n.elapsed:.0f}s of {n.deadline:g}s)")

        policy = retrying.Policy(deadline=self.push_deadline, initial=self.push_wait, maximum=4 * self.push_wait)
        try:
            return retrying.call(policy, once, worth=lambda exc: isinstance(exc, _Transient),
                                 midway=lambda exc: midway(exc.args[0].stderr_text), on_retry=said)
        except _Transient as exc:
            return exc.args[0]  # type: ignore[no-any-return]

    def build(self, request: BuildRequest, on_line: Callable[[str], None]) -> str:
        """Build `request` and push it as IMAGE:HASH; returns the pushed digest (BuildError on failure)."""
        from . import buildah_index  # late: a single-platform run need not import it (nor uuid)

        if request.platforms:
            return buildah_index.build_index(self, request, on_line)
        # an image removed once pushed is built under a name of this build's own (IMAGE:HASH-xxxxxxxx): another
        # process building the same inputs into the same storage gets the same image id under its own name, and
        # removing ours only takes our name away (removing IMAGE:HASH would take the image from under its push)
        local = request.destination
        if not self.keep_images and local.tag:
            local = local.with_tag(f"{local.tag}-{os.urandom(4).hex()}")  # no uuid: it imports platform
        with buildah_index.declared(request) as declared:  # FROM bin-$TARGETARCH: buildah needs `ARG TARGETARCH`
            done = self.again(build_argv(replace(declared, destination=local), self.settings), on_line,
                               pull_failed)
        if not done.ok:
            _refused(done, request.destination.registry, "pull")
            raise buildah_index.failed(f"buildah build exited {done.returncode}", done, request.platform)
        import tempfile  # only a build pushes: a restart that builds nothing need not import it

        with tempfile.TemporaryDirectory(prefix="regless-push-") as tmp:
            digestfile = os.path.join(tmp, "digest")
            # pushed again, never rebuilt: buildah's own --retry gives up on some faults (a 503 on a blob check)
            pushed = self.again(push_argv(request, self.settings, digestfile, str(local)), on_line, push_failed)
            if not pushed.ok:
                _refused(pushed, request.destination.registry, f"push {request.destination}")
                raise BuildError(f"buildah push of {request.destination} exited {pushed.returncode}",
                                 tail=pushed.tail)
            with open(digestfile, encoding="ascii") as f:
                digest = f.read().strip()
        if not digest.startswith("sha256:"):
            raise BuildError(f"buildah push wrote no digest for {request.destination}")
        if not self.keep_images:  # the registry holds it now; the layer cache stays
            self.leave([str(local)], on_line)
        return digest

    def leave(self, names: list[str], on_line: Callable[[str], None]) -> None:
        """Mark this build's image names for removal from buildah's storage once the run is over."""
        if names:
            with self._leftovers_lock:
                self.leftovers += names
            on_line(f"regless: {', '.join(names)} leaves buildah's storage at the end of the run")

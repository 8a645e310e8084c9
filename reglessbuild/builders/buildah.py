"""Builder adapter over buildah: `buildah build`, then `buildah push --digestfile`.

A push that fails on a transient registry fault is pushed again, never rebuilt.
"""

from __future__ import annotations

import os
import tempfile
from typing import Callable

import tenacity

from .. import proc
from ..config import BuildahSettings
from ..errors import BuildError
from ..registry.errors import Fault, classify
from .protocol import BuildRequest

INSTALL_HINT = "install buildah (Debian/Ubuntu: apt-get install buildah)"


def _global(settings: BuildahSettings) -> list[str]:
    return ["buildah", "--storage-driver", settings.storage_driver]


def build_argv(req: BuildRequest, settings: BuildahSettings) -> list[str]:
    argv = [*_global(settings), "build", "--isolation", settings.isolation, f"--layers={str(settings.layers).lower()}",
            "-f", str(req.dockerfile)]
    if req.target:
        argv += ["--target", req.target]
    if req.platform:
        argv += ["--platform", req.platform]
    for k, v in req.build_args:
        argv += ["--build-arg", f"{k}={v}"]
    if req.insecure_pull:
        argv.append("--tls-verify=false")
    argv += ["-t", str(req.destination), str(req.context)]
    return argv


def push_argv(req: BuildRequest, settings: BuildahSettings, digestfile: str) -> list[str]:
    return [*_global(settings), "push", "--digestfile", digestfile,
            *(["--tls-verify=false"] if req.insecure_push else []),
            str(req.destination), f"docker://{req.destination}"]


class _PushFault(Exception):
    pass


class Buildah:
    name = "buildah"

    def __init__(self, settings: BuildahSettings, *, push_attempts: int = 4, push_wait: float = 1.0) -> None:
        self.settings = settings
        self.push_attempts = push_attempts
        self.push_wait = push_wait

    def build(self, request: BuildRequest, on_line: Callable[[str], None]) -> str:
        done = proc.stream(build_argv(request, self.settings), on_line, install_hint=INSTALL_HINT)
        if not done.ok:
            raise BuildError(f"buildah build exited {done.returncode}", tail=done.tail)
        with tempfile.TemporaryDirectory(prefix="regless-push-") as tmp:
            digestfile = os.path.join(tmp, "digest")

            def push() -> proc.Completed:
                pushed = proc.stream(push_argv(request, self.settings, digestfile), on_line, install_hint=INSTALL_HINT)
                if not pushed.ok and classify(pushed.stderr_text) is Fault.TRANSIENT:
                    raise _PushFault(pushed)
                return pushed

            try:
                pushed = tenacity.Retrying(
                    retry=tenacity.retry_if_exception_type(_PushFault),
                    wait=tenacity.wait_exponential_jitter(initial=self.push_wait, max=10 * self.push_wait),
                    stop=tenacity.stop_after_attempt(self.push_attempts), reraise=True,
                )(push)
            except _PushFault as exc:
                pushed = exc.args[0]
            if not pushed.ok:
                raise BuildError(f"buildah push of {request.destination} exited {pushed.returncode}",
                                 tail=pushed.tail)
            with open(digestfile, encoding="ascii") as f:
                digest = f.read().strip()
        if not digest.startswith("sha256:"):
            raise BuildError(f"buildah push wrote no digest for {request.destination}")
        return digest

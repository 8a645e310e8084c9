"""Builder adapter over kaniko's executor: one call builds and pushes, `--digest-file` tells the digest.

kaniko builds one platform per run (`--custom-platform`) and cannot push an image index, so an artifact
with several `platforms` is refused before anything runs (exit 2): `multi_platform` is False.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

from .. import proc
from ..errors import BuildError
from ..settings import KanikoSettings
from .protocol import BuildRequest


def build_argv(req: BuildRequest, settings: KanikoSettings, digestfile: str) -> list[str]:
    """One executor run that builds and pushes `req`, writing the pushed digest to `digestfile`."""
    argv = [settings.executor, f"--context=dir://{req.context}", f"--dockerfile={req.dockerfile}",
            f"--destination={req.destination}", f"--digest-file={digestfile}", "--push-retry=3"]
    if req.target:
        argv.append(f"--target={req.target}")
    if req.platform:
        argv.append(f"--custom-platform={req.platform}")
    for k, v in req.build_args:
        argv.append(f"--build-arg={k}={v}")
    if settings.cache:
        argv.append("--cache=true")
        if settings.cache_repo:
            argv.append(f"--cache-repo={settings.cache_repo}")
    if settings.reproducible:
        argv.append("--reproducible")
    if req.insecure_push:
        argv += ["--insecure", "--skip-tls-verify"]
    if req.insecure_pull:
        argv += ["--insecure-pull", "--skip-tls-verify-pull"]
    return argv


class Kaniko:
    """The Builder port over kaniko's executor. kaniko retries its own pushes (`--push-retry=3`);
    regless adds no retries around it (retrying.py: which layer retries what)."""

    name = "kaniko"
    multi_platform = False

    def __init__(self, settings: KanikoSettings, *, procs: proc.Processes = proc.LOCAL) -> None:
        self.settings = settings
        self.procs = procs  # the subprocess seam (proc.Processes)

    def build(self, request: BuildRequest, on_line: Callable[[str], None]) -> str:
        """Build and push `request` in one executor run; returns the digest kaniko wrote."""
        with tempfile.TemporaryDirectory(prefix="regless-kaniko-") as tmp:
            digestfile = os.path.join(tmp, "digest")
            done = self.procs.stream(build_argv(request, self.settings, digestfile), on_line,
                               install_hint="set builder.kaniko.executor to the path of kaniko's executor")
            if not done.ok:
                raise BuildError(f"kaniko exited {done.returncode}", tail=done.tail)
            try:
                with open(digestfile, encoding="ascii") as f:
                    digest = f.read().strip()
            except OSError:
                digest = ""
        if not digest.startswith("sha256:"):
            raise BuildError(f"kaniko wrote no digest for {request.destination}", tail=done.tail)
        return digest

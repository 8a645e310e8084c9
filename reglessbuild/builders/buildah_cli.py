"""buildah's command lines, and how a failed buildah call is read: what the Buildah adapter (buildah.py)
and its multi-platform builds (buildah_index.py) share, so that neither imports the other.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

from .. import proc
from ..faults import Fault, classify
from ..settings import BuildahSettings
from .protocol import BuildRequest

INSTALL_HINT = "install buildah (Debian/Ubuntu: apt-get install buildah)"


def global_argv(settings: BuildahSettings) -> list[str]:
    """`buildah` with the storage driver regless uses (vfs: no kernel overlay needed)."""
    return ["buildah", "--storage-driver", settings.storage_driver]


def _retry(settings: BuildahSettings) -> list[str]:
    return ["--log-level=debug"] + ([f"--retry={settings.retry}"] if settings.retry is not None else []) + (
        [f"--retry-delay={settings.retry_delay}"] if settings.retry_delay else [])


def build_argv(req: BuildRequest, settings: BuildahSettings) -> list[str]:
    """`buildah build` of one request, tagged with the destination (the caller may rename it)."""
    argv = [*global_argv(settings), "build", "--isolation", settings.isolation,
            f"--layers={str(settings.layers).lower()}", *_retry(settings), "-f", str(req.dockerfile)]
    if settings.timestamp is not None:  # reproducible: the same inputs give the same digest anywhere
        argv += ["--timestamp", str(settings.timestamp)]
    if req.target:
        argv += ["--target", req.target]
    if req.platform:
        argv += ["--platform", req.platform]
    for k, v in req.build_args:
        argv += ["--build-arg", f"{k}={v}"]
    if req.insecure_pull:
        argv.append("--tls-verify=false")
    elif req.cert_dir:
        argv += ["--cert-dir", req.cert_dir]
    argv += ["-t", str(req.destination), str(req.context)]
    return argv


def push_argv(req: BuildRequest, settings: BuildahSettings, digestfile: str, source: str | None = None
              ) -> list[str]:
    """Push the local image `source` (default: the destination's own name) to the destination."""
    return [*global_argv(settings), "push", *_retry(settings), "--digestfile", digestfile,
            *(["--tls-verify=false"] if req.insecure_push else ["--cert-dir", req.cert_dir] if req.cert_dir else []),
            source or str(req.destination), f"docker://{req.destination}"]


# a build that failed while pulling its base is worth another try; one whose own steps failed is not (read
# in a failed build's output only: compiled by `re`, into its cache, then, not while regless starts)
_PULL_FAILURE = (r"(?i)creating build container|Error fetching blob|pulling image|initializing source|"
                 r"reading manifest|trying to pull|copying system image")


def pull_failed(done: proc.Completed) -> bool:
    """A build that failed while pulling its base on a transient registry fault: worth running again."""
    return classify(done.stderr_text) is Fault.TRANSIENT and bool(re.search(_PULL_FAILURE, done.stderr_text))


def push_failed(done: proc.Completed) -> bool:
    """A push that failed on a transient registry fault: worth pushing again (never rebuilding)."""
    return classify(done.stderr_text) is Fault.TRANSIENT




class Session(Protocol):
    """What a multi-platform build (buildah_index.py) needs of the Buildah adapter: its settings, its
    subprocess seam, whether it keeps images, and its reruns on transient registry faults."""

    settings: BuildahSettings
    procs: proc.Processes
    keep_images: bool

    def again(self, argv: list[str], on_line: Callable[[str], None], transient: Callable[[proc.Completed], bool]
              ) -> proc.Completed:
        """Run `argv`, again while it fails as `transient` says, within the push deadline."""
        ...

    def leave(self, names: list[str], on_line: Callable[[str], None]) -> None:
        """Mark this build's image names for removal from buildah's storage once the run is over."""
        ...

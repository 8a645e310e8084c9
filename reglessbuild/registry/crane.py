"""Registry adapter over crane (go-containerregistry): `crane digest` and `crane copy`.

crane prints the digest on stdout and exits 1 for every failure, with
MANIFEST_UNKNOWN / NAME_UNKNOWN on stderr for "not found" (shared/reference/crane-cli.md).
Calls run with `-v`: crane's error text never says how long a 429 or 503 asked to wait, but its
debug log shows the response's headers (secrets redacted by crane), Retry-After among them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .. import proc
from ..errors import RegistryError
from ..faults import raise_for
from ..refs import ImageRef, registry_matches
from . import tls

INSTALL_HINT = "install crane (go install github.com/google/go-containerregistry/cmd/crane@latest), or skopeo"


def digest_argv(ref: ImageRef, insecure: bool) -> list[str]:
    """`crane digest`: the manifest digest by a HEAD (falling back to a GET), with its debug log."""
    return ["crane", "digest", "-v", *(["--insecure"] if insecure else []), str(ref)]


def copy_argv(src: ImageRef, dst: ImageRef, insecure: bool) -> list[str]:
    """`crane copy`: every platform and the index, digests kept, with its debug log."""
    return ["crane", "copy", "-v", *(["--insecure"] if insecure else []), str(src), str(dst)]


class Crane:
    """The Registry port over crane: one crane process per operation, one attempt each."""

    name = "crane"
    # push_layout of an index also pushes each manifest it names that the registry lacks, with its blobs,
    # from the layout (go-containerregistry's WriteIndex): records.store pushes a record and its referrers
    # index in one crane process
    index_children = True

    def __init__(self, *, insecure: Sequence[str] = (), executable: str = "crane", ca_file: Path | None = None,
                 attempt_timeout: float = 30.0, procs: proc.Processes = proc.LOCAL) -> None:
        self.insecure = tuple(insecure)
        self.executable = executable
        self.procs = procs  # the subprocess seam (proc.Processes)
        self.env = tls.go_env(ca_file)
        self.timeout = attempt_timeout

    def _argv(self, argv: list[str]) -> list[str]:
        return [self.executable, *argv[1:]]

    def digest(self, ref: ImageRef) -> str | None:
        """The manifest digest of `ref`; None for a definite "not found"; faults as faults.raise_for reads them."""
        done = self.procs.run(self._argv(digest_argv(ref, registry_matches(ref.registry, self.insecure))),
                              install_hint=INSTALL_HINT, env=tls.short_lived(self.env), timeout=self.timeout)
        if done.ok:
            out = done.stdout.decode().strip()
            if not out.startswith("sha256:"):
                raise RegistryError(f"crane digest {ref}: unexpected output {out[:80]!r}")
            return out
        raise_for(done.stderr_text, registry=ref.registry, action=f"digest {ref}", log=done.log,
                  retries_requests=True)
        return None

    def manifest(self, ref: ImageRef) -> bytes | None:
        """The manifest bytes of `ref` as served; None for a definite "not found"."""
        done = self.procs.run(self._argv(["crane", "manifest", "-v", *self._flag(ref), str(ref)]),
                              install_hint=INSTALL_HINT, env=tls.short_lived(self.env), timeout=self.timeout)
        if done.ok:
            return done.stdout  # the bytes as served (crane adds no newline: crane-cli.md)
        raise_for(done.stderr_text, registry=ref.registry, action=f"manifest {ref}", log=done.log,
                  retries_requests=True)
        return None

    def push_layout(self, layout: Path, ref: ImageRef, *, index_only: bool = False) -> None:
        """Push an OCI layout's one entry to `ref` (`crane push`)."""
        # an index's manifests that the registry has already are not pushed again (go-containerregistry
        # checks each), so `index_only` needs nothing more
        done = self.procs.run(self._argv(["crane", "push", "-v", *self._flag(ref), str(layout), str(ref)]),
                              install_hint=INSTALL_HINT, env=self.env, timeout=self.timeout)
        if not done.ok:
            raise_for(done.stderr_text, registry=ref.registry, action=f"push {ref}", log=done.log,
                      retries_requests=True)
            raise RegistryError(f"push {ref}: not found")

    def pull_layout(self, ref: ImageRef, layout: Path) -> None:
        """Pull `ref` into an OCI layout (`crane pull --format oci`)."""
        argv = ["crane", "pull", "-v", "--format", "oci", *self._flag(ref), str(ref), str(layout)]
        done = self.procs.run(self._argv(argv),
                              install_hint=INSTALL_HINT, env=self.env, timeout=self.timeout)
        if not done.ok:
            raise_for(done.stderr_text, registry=ref.registry, action=f"pull {ref}", log=done.log,
                      retries_requests=True)
            raise RegistryError(f"pull {ref}: not found")

    def _flag(self, ref: ImageRef) -> list[str]:
        return ["--insecure"] if registry_matches(ref.registry, self.insecure) else []

    def copy(self, src: ImageRef, dst: ImageRef) -> None:
        """Make `dst` carry the manifest of `src` (`crane copy`); not verified here (Reliable.copy does)."""
        insecure = registry_matches(src.registry, self.insecure) or registry_matches(dst.registry, self.insecure)
        done = self.procs.run(self._argv(copy_argv(src, dst, insecure)), install_hint=INSTALL_HINT, env=self.env,
                              timeout=self.timeout)
        if not done.ok:
            raise_for(done.stderr_text, registry=dst.registry, action=f"copy {src} to {dst}", log=done.log,
                      retries_requests=True)
            raise RegistryError(f"copy {src} to {dst}: source not found")

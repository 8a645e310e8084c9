"""Registry adapter over skopeo: `inspect --raw` for digests, `copy --preserve-digests` for retags.

Calls run with `--debug`: skopeo's error text never says how long a 429 asked to wait, but
containers/image logs the Retry-After it honours between its own attempts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .. import proc
from ..errors import RegistryError
from ..faults import raise_for
from ..refs import ImageRef, registry_matches
from . import tls

INSTALL_HINT = "install skopeo (Debian/Ubuntu: apt-get install skopeo), or crane from go-containerregistry"


def _tls(prefix: str, insecure: bool, cert_dir: str | None) -> list[str]:
    if insecure:
        return [f"--{prefix}tls-verify=false"]
    return [f"--{prefix}cert-dir", cert_dir] if cert_dir else []


def digest_argv(ref: ImageRef, insecure: bool, cert_dir: str | None = None) -> list[str]:
    """`skopeo inspect --raw`: the manifest bytes (skopeo has no HEAD), with its debug log."""
    return ["skopeo", "--debug", "inspect", "--raw", *_tls("", insecure, cert_dir), f"docker://{ref}"]


def copy_argv(src: ImageRef, dst: ImageRef, src_insecure: bool, dst_insecure: bool,
              cert_dir: str | None = None) -> list[str]:
    """`skopeo copy --all --preserve-digests`: every platform and the index, digests kept."""
    return ["skopeo", "--debug", "copy", "--quiet", "--all", "--preserve-digests",
            *_tls("src-", src_insecure, cert_dir),
            *_tls("dest-", dst_insecure, cert_dir), f"docker://{src}", f"docker://{dst}"]


class Skopeo:
    """The Registry port over skopeo: one skopeo process per operation, one attempt each."""

    name = "skopeo"

    def __init__(self, *, insecure: Sequence[str] = (), ca_file: Path | None = None,
                 attempt_timeout: float = 30.0, procs: proc.Processes = proc.LOCAL) -> None:
        self.insecure = tuple(insecure)
        self.procs = procs  # the subprocess seam (proc.Processes)
        self.cert_dir = tls.cert_dir(ca_file) if ca_file else None
        self.timeout = attempt_timeout

    def _insecure(self, ref: ImageRef) -> bool:
        return registry_matches(ref.registry, self.insecure)

    def manifest(self, ref: ImageRef) -> bytes | None:
        """The manifest bytes of `ref` as served; None for a definite "not found"."""
        done = self.procs.run(digest_argv(ref, self._insecure(ref), self.cert_dir), install_hint=INSTALL_HINT,
                              env=tls.short_lived(None), timeout=self.timeout)
        if done.ok:
            return done.stdout
        raise_for(done.stderr_text, registry=ref.registry, action=f"inspect {ref}", log=done.log)
        return None

    def digest(self, ref: ImageRef) -> str | None:
        """The sha256 of the manifest bytes as served; None for a definite "not found"."""
        import hashlib  # only when the tool checks (REGLESS_DIRECT_CHECKS=0 or a fallback): not at a restart

        raw = self.manifest(ref)
        # the digest is the sha256 of the manifest bytes exactly as the registry serves them
        return None if raw is None else "sha256:" + hashlib.sha256(raw).hexdigest()

    def push_layout(self, layout: Path, ref: ImageRef, *, index_only: bool = False) -> None:
        """Push an OCI layout's one entry to `ref` (`skopeo copy oci:... docker://...`)."""
        # skopeo 1.9 rewrites an index it copies (--preserve-digests refuses to), dropping descriptors'
        # artifactType; index-only: the manifests it names are in the registry already
        multi = ["--multi-arch", "index-only"] if index_only else []
        done = self.procs.run(["skopeo", "--debug", "copy", "--quiet", *multi,
                               *_tls("dest-", self._insecure(ref), self.cert_dir), f"oci:{layout}", f"docker://{ref}"],
                              install_hint=INSTALL_HINT, timeout=self.timeout)
        if not done.ok:
            raise_for(done.stderr_text, registry=ref.registry, action=f"push {ref}", log=done.log)
            raise RegistryError(f"push {ref}: not found")

    def pull_layout(self, ref: ImageRef, layout: Path) -> None:
        """Pull `ref` into an OCI layout, digests kept."""
        done = self.procs.run(["skopeo", "--debug", "copy", "--quiet", "--preserve-digests",
                               *_tls("src-", self._insecure(ref), self.cert_dir), f"docker://{ref}",
                               f"oci:{layout}:record"],
                              install_hint=INSTALL_HINT, timeout=self.timeout)
        if not done.ok:
            raise_for(done.stderr_text, registry=ref.registry, action=f"pull {ref}", log=done.log)
            raise RegistryError(f"pull {ref}: not found")

    def copy(self, src: ImageRef, dst: ImageRef) -> None:
        """Make `dst` carry the manifest of `src` (`skopeo copy`); not verified here (Reliable.copy does)."""
        done = self.procs.run(copy_argv(src, dst, self._insecure(src), self._insecure(dst), self.cert_dir),
                              install_hint=INSTALL_HINT, timeout=self.timeout)
        if not done.ok:
            raise_for(done.stderr_text, registry=dst.registry, action=f"copy {src} to {dst}", log=done.log)
            raise RegistryError(f"copy {src} to {dst}: source not found")

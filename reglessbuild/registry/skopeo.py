"""Registry adapter over skopeo: `inspect --raw` for digests, `copy --preserve-digests` for retags.

Calls run with `--debug`: skopeo's error text never says how long a 429 asked to wait, but
containers/image logs the Retry-After it honours between its own attempts.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

from .. import proc
from ..errors import RegistryError
from . import tls
from ..refs import ImageRef, registry_matches
from .errors import raise_for

INSTALL_HINT = "install skopeo (Debian/Ubuntu: apt-get install skopeo), or crane from go-containerregistry"


def _tls(prefix: str, insecure: bool, cert_dir: str | None) -> list[str]:
    if insecure:
        return [f"--{prefix}tls-verify=false"]
    return [f"--{prefix}cert-dir", cert_dir] if cert_dir else []


def digest_argv(ref: ImageRef, insecure: bool, cert_dir: str | None = None) -> list[str]:
    return ["skopeo", "--debug", "inspect", "--raw", *_tls("", insecure, cert_dir), f"docker://{ref}"]


def copy_argv(src: ImageRef, dst: ImageRef, src_insecure: bool, dst_insecure: bool,
              cert_dir: str | None = None) -> list[str]:
    return ["skopeo", "--debug", "copy", "--quiet", "--all", "--preserve-digests", *_tls("src-", src_insecure, cert_dir),
            *_tls("dest-", dst_insecure, cert_dir), f"docker://{src}", f"docker://{dst}"]


class Skopeo:
    name = "skopeo"

    def __init__(self, *, insecure: Sequence[str] = (), ca_file: Path | None = None,
                 attempt_timeout: float = 30.0) -> None:
        self.insecure = tuple(insecure)
        self.cert_dir = tls.cert_dir(ca_file) if ca_file else None
        self.timeout = attempt_timeout

    def _insecure(self, ref: ImageRef) -> bool:
        return registry_matches(ref.registry, self.insecure)

    def manifest(self, ref: ImageRef) -> bytes | None:
        done = proc.run(digest_argv(ref, self._insecure(ref), self.cert_dir), install_hint=INSTALL_HINT,
                        env=tls.short_lived(None), timeout=self.timeout)
        if done.ok:
            return done.stdout
        raise_for(done.stderr_text, registry=ref.registry, action=f"inspect {ref}", log=done.log)
        return None

    def digest(self, ref: ImageRef) -> str | None:
        raw = self.manifest(ref)
        # the digest is the sha256 of the manifest bytes exactly as the registry serves them
        return None if raw is None else "sha256:" + hashlib.sha256(raw).hexdigest()

    def push_layout(self, layout: Path, ref: ImageRef, *, index_only: bool = False) -> None:
        # skopeo 1.9 rewrites an index it copies (--preserve-digests refuses to), dropping descriptors'
        # artifactType; index-only: the manifests it names are in the registry already
        done = proc.run(["skopeo", "--debug", "copy", "--quiet", *(["--multi-arch", "index-only"] if index_only else []),
                         *_tls("dest-", self._insecure(ref), self.cert_dir), f"oci:{layout}", f"docker://{ref}"],
                        install_hint=INSTALL_HINT, timeout=self.timeout)
        if not done.ok:
            raise_for(done.stderr_text, registry=ref.registry, action=f"push {ref}", log=done.log)
            raise RegistryError(f"push {ref}: not found")

    def pull_layout(self, ref: ImageRef, layout: Path) -> None:
        done = proc.run(["skopeo", "--debug", "copy", "--quiet", "--preserve-digests",
                         *_tls("src-", self._insecure(ref), self.cert_dir), f"docker://{ref}", f"oci:{layout}:record"],
                        install_hint=INSTALL_HINT, timeout=self.timeout)
        if not done.ok:
            raise_for(done.stderr_text, registry=ref.registry, action=f"pull {ref}", log=done.log)
            raise RegistryError(f"pull {ref}: not found")

    def copy(self, src: ImageRef, dst: ImageRef) -> None:
        done = proc.run(copy_argv(src, dst, self._insecure(src), self._insecure(dst), self.cert_dir),
                        install_hint=INSTALL_HINT, timeout=self.timeout)
        if not done.ok:
            raise_for(done.stderr_text, registry=dst.registry, action=f"copy {src} to {dst}", log=done.log)
            raise RegistryError(f"copy {src} to {dst}: source not found")

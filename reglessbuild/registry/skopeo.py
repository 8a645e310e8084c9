"""Registry adapter over skopeo: `inspect --raw` for digests, `copy --preserve-digests` for retags."""

from __future__ import annotations

import hashlib
from typing import Sequence

from .. import proc
from ..refs import ImageRef, registry_matches
from .errors import raise_for

INSTALL_HINT = "install skopeo (Debian/Ubuntu: apt-get install skopeo), or crane from go-containerregistry"


def digest_argv(ref: ImageRef, insecure: bool) -> list[str]:
    return ["skopeo", "inspect", "--raw", *(["--tls-verify=false"] if insecure else []), f"docker://{ref}"]


def copy_argv(src: ImageRef, dst: ImageRef, src_insecure: bool, dst_insecure: bool) -> list[str]:
    return ["skopeo", "copy", "--quiet", "--all", "--preserve-digests",
            *(["--src-tls-verify=false"] if src_insecure else []),
            *(["--dest-tls-verify=false"] if dst_insecure else []),
            f"docker://{src}", f"docker://{dst}"]


class Skopeo:
    name = "skopeo"

    def __init__(self, *, insecure: Sequence[str] = ()) -> None:
        self.insecure = tuple(insecure)

    def _insecure(self, ref: ImageRef) -> bool:
        return registry_matches(ref.registry, self.insecure)

    def digest(self, ref: ImageRef) -> str | None:
        done = proc.run(digest_argv(ref, self._insecure(ref)), install_hint=INSTALL_HINT)
        if done.ok:
            # the digest is the sha256 of the manifest bytes exactly as the registry serves them
            return "sha256:" + hashlib.sha256(done.stdout).hexdigest()
        raise_for(done.stderr_text, registry=ref.registry, action=f"inspect {ref}")
        return None

    def copy(self, src: ImageRef, dst: ImageRef) -> None:
        done = proc.run(copy_argv(src, dst, self._insecure(src), self._insecure(dst)), install_hint=INSTALL_HINT)
        if not done.ok:
            raise_for(done.stderr_text, registry=dst.registry, action=f"copy {src} to {dst}")
            from ..errors import RegistryError

            raise RegistryError(f"copy {src} to {dst}: source not found")

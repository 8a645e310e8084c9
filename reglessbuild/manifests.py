"""Base images of a multi-platform artifact, resolved to each platform's manifest digest.

A digest alone (what the registry port answers) names an image index as a whole; a build for
linux/arm64 starts from the index's arm64 manifest, so that manifest's digest is what enters the
hash, one per platform. One read of the raw manifest (through the registry tool in use, with the
registry layer's retries and fault classes) gives every platform's: a multi-platform restart costs
one read per base, as a single-platform one costs one digest.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import proc
from .errors import DockerfileError
from .platforms import PlatformError, parse, pick
from .refs import ImageRef, RefError, registry_matches
from .refs import parse as parse_ref
from .registry import Reliable, retry, tls
from .registry.errors import raise_for


@dataclass(frozen=True)
class Wanted:
    """One base of one platform: the FROM (or COPY --from) text, and the platform to pull it for."""

    text: str
    platform: str
    dockerfile: str
    line: int


def manifest_argv(tool: str, ref: ImageRef, *, insecure: bool, cert_dir: str | None, executable: str = "crane"
                  ) -> list[str]:
    """The raw manifest on stdout, exactly as the registry serves it."""
    if tool == "crane":
        return [executable, "manifest", *(["--insecure"] if insecure else []), str(ref)]
    tls_flags = ["--tls-verify=false"] if insecure else (["--cert-dir", cert_dir] if cert_dir else [])
    return ["skopeo", "inspect", "--raw", *tls_flags, f"docker://{ref}"]


class Reader:
    """Raw manifests through the tool behind `registry`, counted in its calls."""

    def __init__(self, registry: Reliable, *, insecure: tuple[str, ...] = (), ca_file: Path | None = None,
                 timeout: float = 30.0) -> None:
        self.registry = registry
        self.insecure = insecure
        self.cert_dir = tls.cert_dir(ca_file) if ca_file else None
        self.env = tls.go_env(ca_file) if registry.name == "crane" else None
        self.executable = getattr(registry.inner, "executable", "crane")
        self.timeout = timeout

    def raw(self, ref: ImageRef) -> bytes | None:
        """The manifest bytes of `ref`; None when the registry definitely does not have it."""
        argv = manifest_argv(self.registry.name, ref, insecure=registry_matches(ref.registry, self.insecure),
                             cert_dir=self.cert_dir, executable=self.executable)

        def once() -> bytes | None:
            done = proc.run(argv, env=tls.short_lived(self.env), timeout=self.timeout,
                            install_hint="install skopeo (apt-get install skopeo) or crane")
            if done.ok:
                return done.stdout
            raise_for(done.stderr_text, registry=ref.registry, action=f"read the manifest of {ref}")
            return None

        self.registry.calls += 1
        return retry.call(self.registry.policy, once, on_retry=self.registry.on_retry)


def resolve(wanted: list[Wanted], reader: Reader, concurrency: int) -> dict[tuple[str, str], str]:
    """(text, platform) -> that platform's manifest digest; each text's manifest read once, concurrently.
    A base that is one image, not an index, is that image for every platform (its digest)."""
    texts = sorted({w.text for w in wanted})
    first = {w.text: w for w in reversed(wanted)}
    refs: dict[str, ImageRef] = {}
    for text in texts:
        try:
            refs[text] = parse_ref(text)
        except RefError as exc:
            w = first[text]
            raise DockerfileError(f"FROM {text!r}: {exc}", path=w.dockerfile, line=w.line) from exc
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        raws = dict(zip(texts, pool.map(lambda t: reader.raw(refs[t]), texts), strict=True))
    out: dict[tuple[str, str], str] = {}
    for w in wanted:
        raw = raws[w.text]
        if raw is None:
            raise DockerfileError(f"base image {w.text} not found in its registry", path=w.dockerfile, line=w.line,
                                  hint="push the base image first, or fix the FROM line")
        try:
            digest = pick(raw, parse(w.platform))
        except PlatformError as exc:
            raise DockerfileError(f"base image {w.text}: {exc.message}", path=w.dockerfile, line=w.line,
                                  hint=f"{exc.hint}; build it for {w.platform} too, or drop {w.platform} from "
                                       "the artifact's platforms") from exc
        out[(w.text, w.platform)] = digest or "sha256:" + hashlib.sha256(raw).hexdigest()
    return out

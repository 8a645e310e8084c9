"""Base images of a multi-platform artifact, resolved to each platform's manifest digest.

A digest alone (what the registry port answers) names an image index as a whole; a build for
linux/arm64 starts from the index's arm64 manifest, so that manifest's digest is what enters the
hash, one per platform. One read of the raw manifest (through the registry tool in use, with the
registry layer's retries and fault classes) gives every platform's: a multi-platform restart costs
one read per base, as a single-platform one costs one digest.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .errors import DockerfileError
from .platforms import PlatformError, parse, pick
from .refs import ImageRef, RefError
from .refs import parse as parse_ref


@dataclass(frozen=True)
class Wanted:
    """One base of one platform: the FROM (or COPY --from) text, and the platform to pull it for."""

    text: str
    platform: str
    dockerfile: str
    line: int


def resolve(wanted: list[Wanted], read: Callable[[ImageRef], bytes | None], concurrency: int
            ) -> dict[tuple[str, str], str]:
    """(text, platform) -> that platform's manifest digest; each text's manifest read once (`read`: the
    registry's `manifest`, None when it is not there), concurrently. A base that is one image, not an
    index, is that image for every platform (its digest)."""
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
        raws = dict(zip(texts, pool.map(lambda t: read(refs[t]), texts), strict=True))
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
        if not digest:
            import hashlib  # only for a single-platform base of a multi-platform artifact: not at a restart

            digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        out[(w.text, w.platform)] = digest
    return out

"""Which earlier inputs an artifact's current inputs are compared with, to say why it would rebuild.

In order: the image named with `--against` (a tag, a digest or a full reference), read from the
registry; else the artifact's last inputs in this machine's index; else the inputs record in the
registry of the first image that carries one among the artifact's `tags:` (`latest`, ...), then the
image of its current hash (when it is cached, nothing changed). Records are found by the image's
digest among its referrers (records.py), so this works on a runner with an empty cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import records
from .errors import InputError
from .index import Index
from .refs import ImageRef, RefError, parse


@dataclass(frozen=True)
class Previous:
    """The earlier inputs record an artifact is compared with, and where it came from, so that `explain`
    can say what it compared against, or why there was nothing to compare."""

    record: dict[str, Any] | None
    source: str  # "index", or the image whose record it is (repository@digest)
    missing: str = ""  # why there is none, for the user: "no inputs record for IMAGE:TAG"
    warning: str = ""  # a record that was there but not trusted


def resolve(image: ImageRef, against: str) -> ImageRef:
    """`--against` as a reference: a tag or a digest of the artifact's image, or a full reference."""
    if against.startswith("sha256:"):
        return image.bare().with_digest(against)
    if "/" not in against and ":" not in against and "@" not in against:
        return image.bare().with_tag(against)
    try:
        return parse(against)
    except RefError as exc:
        raise InputError(f"--against {against}: {exc}",
                         hint="a tag (latest), a digest (sha256:...) or a full reference (registry/repo:tag)") from exc


def find(image: ImageRef, tags: tuple[str, ...], current: ImageRef | None, index: Index | None, registry: Any, *,
         against: str | None = None, enabled: bool = True, warn: Callable[[str], None] = lambda _: None) -> Previous:
    """The inputs to compare with (see the module's doc); `registry` has digest() and records.Store's
    methods. A record that is there but not to be trusted is passed over with a warning."""
    if against is not None:
        return _from_registry(resolve(image, against), registry, warn) or Previous(
            None, "", f"no inputs record for {resolve(image, against)}")
    last = index.last_inputs(str(image)) if index is not None else None
    if last is not None:
        return Previous(last, "index")
    if not enabled:
        return Previous(None, "", "no build of it is recorded in this cache (inputs records are off)")
    tried = [image.with_tag(t) for t in tags] + ([current] if current is not None else [])
    for ref in tried:
        found = _from_registry(ref, registry, warn)
        if found is not None:
            return found
    if not tried:
        return Previous(None, "", f"no build of {image} is recorded in this cache, and it has no tags to look for")
    return Previous(None, "", "no inputs record for " + ", ".join(str(r) for r in tried))


def why(prev: Previous, current: dict[str, Any], n: int = 3) -> tuple[str, ...]:
    """The first `n` changes from `prev` to the `current` record, most significant first."""
    from . import explain

    if prev.record is None:
        return (prev.missing,) if prev.missing else ()
    changes = explain.diff(prev.record, current)
    return tuple(str(c) for c in changes[:n]) or ("nothing changed in its inputs record",)


def _from_registry(ref: ImageRef, registry: Any, warn: Callable[[str], None]) -> Previous | None:
    digest = ref.digest or registry.digest(ref)
    if digest is None:
        return None
    try:
        found = records.load(registry, ref, digest)
    except records.RecordError as exc:
        warn(f"the inputs record of {ref} is ignored: {exc.message}")
        return None
    return None if found is None else Previous(found.record, found.image)

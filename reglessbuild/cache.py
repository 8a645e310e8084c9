"""Operations on the index behind `regless cache`: list, remove, prune, verify, add, export, import.

They return values; cli.py renders them.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError
from .index import Index, Result, result_from_json
from .refs import RefError, parse
from .registry.protocol import RegistryService

HASH_RE = re.compile(r"^[0-9a-f]{32}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """`90s`, `30m`, `12h`, `7d`, `2w`, or combinations such as `1d12h`, in seconds."""
    parts = _DURATION_RE.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise InputError(f"bad duration {text!r}", hint="write it as a number and a unit: 90s, 30m, 12h, 7d, 2w")
    return sum(float(n) * _UNIT[u] for n, u in parts)


def find(index: Index, prefix: str) -> tuple[str, Result]:
    """An entry by its hash, or a unique prefix of it."""
    matches = [(h, r) for h, r in index.items() if h.startswith(prefix)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise InputError(f"no cache entry for hash {prefix!r}", hint="`regless cache ls` lists the entries")
    raise InputError(f"hash prefix {prefix!r} is ambiguous ({len(matches)} entries)", hint="give more characters")


def prune_selection(items: Iterable[tuple[str, Result]], *, now: float, older_than: float | None,
                    keep: int | None) -> list[str]:
    """Hashes to drop: entries older than `older_than` seconds, and all but the `keep` newest of each image."""
    drop: set[str] = set()
    by_image: dict[str, list[tuple[str, Result]]] = {}
    for h, r in items:
        if older_than is not None and now - r.built_at > older_than:
            drop.add(h)
        image = parse(r.refs[0]).name if r.refs else ""
        by_image.setdefault(image, []).append((h, r))
    if keep is not None:
        for rows in by_image.values():
            rows.sort(key=lambda hr: hr[1].built_at, reverse=True)
            drop.update(h for h, _ in rows[keep:])
    return sorted(drop)


@dataclass(frozen=True)
class Verified:
    """One index entry after `cache verify`: which of its references still carry its digest."""

    hash: str
    result: Result
    live: tuple[str, ...]  # references that still carry the digest
    dead: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Some reference still carries the digest: the entry stands."""
        return bool(self.live)


def verify(index: Index, registry: RegistryService, concurrency: int) -> list[Verified]:
    """Check every reference of every entry in the registry, all at once."""
    entries = list(index.items())
    refs = sorted({ref for _, r in entries for ref in r.refs})
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        now = dict(zip(refs, pool.map(lambda t: registry.digest(parse(t)), refs), strict=True))
    return [Verified(h, r, tuple(x for x in r.refs if now[x] == r.digest),
                     tuple(x for x in r.refs if now[x] != r.digest)) for h, r in entries]


def add(index: Index, registry: RegistryService, text: str) -> tuple[str, Result]:
    """Record IMAGE:HASH, found in the registry, so that this build becomes a hit here (and for retags)."""
    try:
        ref = parse(text)
    except RefError as exc:
        raise InputError(str(exc)) from exc
    if ref.digest or not ref.tag or not HASH_RE.match(ref.tag):
        raise InputError(f"{text} is not IMAGE:HASH", hint="the tag must be a workspace hash (32 hex characters), "
                         "as `regless hash ARTIFACT` prints it")
    digest = registry.digest(ref)
    if digest is None:
        raise InputError(f"{ref} is not in the registry", hint="build it first, or check the name and hash")
    result = Result(digest, (str(ref),), "unknown", time.time())
    _written, conflicts = index.merge_many({ref.tag: result})
    if conflicts:
        raise InputError(f"the index already records another digest for hash {ref.tag}",
                         hint=f"`regless cache verify --fix` drops dead entries; `regless cache rm {ref.tag}` "
                              "drops this one")
    entry = index.get(ref.tag)
    assert entry is not None
    return ref.tag, entry


def read_export(path: Path) -> dict[str, Result]:
    """Parse and check a whole export file before anything is written: one bad entry changes nothing.
    The file is the JSON document `cache export` writes (documents.py); the JSON lines of earlier
    versions (`{"v": 1, ..., "built_at": ...}` a line) are read too."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("command") == "cache export":
        if not isinstance(doc.get("entries"), list):
            raise InputError(f"{path}: `entries` is not a list", hint="the file must be written by "
                             "`regless cache export`; nothing was imported")
        records: list[tuple[int, Any]] = list(enumerate(doc["entries"], 1))
        where = "entry"
    else:
        records = [(no, line) for no, line in enumerate(text.splitlines(), 1) if line.strip()]
        where = "line"
    out: dict[str, Result] = {}
    for no, rec in records:
        try:
            if isinstance(rec, str):
                rec = json.loads(rec)
                if not isinstance(rec, dict) or rec.get("v") != 1:
                    raise ValueError("not a regless export record (v: 1)")
            if not isinstance(rec, dict):
                raise TypeError("not an entry (a JSON object)")
            h, digest, refs = rec["hash"], rec["digest"], rec["refs"]
            if not isinstance(h, str) or not HASH_RE.match(h):
                raise ValueError(f"bad hash {h!r}")
            if not isinstance(digest, str) or not DIGEST_RE.match(digest):
                raise ValueError(f"bad digest {digest!r}")
            if not isinstance(refs, list) or not refs or not all(isinstance(x, str) for x in refs):
                raise ValueError("refs must be a non-empty list of image references")
            for x in refs:
                parse(x)
            out[h] = result_from_json(rec)  # index.py: the one reader of an entry's JSON
        except (ValueError, KeyError, TypeError, RefError) as exc:
            detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
            at = f"{path}:{no}" if where == "line" else f"{path}: entry {no}"
            raise InputError(f"{at}: {detail}", hint="the file must be written by `regless cache export`; "
                             "nothing was imported") from exc
    return out

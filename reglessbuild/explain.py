"""Why an artifact would rebuild: its current inputs against those recorded at its last build.

`snapshot` turns Inputs into the record kept in the index; `diff` compares two
records and returns the changes, most significant first. Both are pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import xxhash

from .hashing.recipe import Inputs

# settings in order of significance: what changes the whole build comes first
SETTINGS = (("dockerfile", "Dockerfile"), ("builder", "builder kind"), ("target", "target stage"),
            ("platform", "platform"), ("bases", "base image"), ("requires", "required artifact"),
            ("buildArgs", "build arg"), ("remote", "remote ADD source"))


@dataclass(frozen=True)
class Change:
    """One difference between two inputs records; `str()` says it in a line for people."""

    kind: str  # setting | added | removed | content | mode | type | target
    subject: str  # what changed: a setting's name or a file path
    detail: str = ""

    def __str__(self) -> str:
        text = {
            "setting": f"{self.subject} changed",
            "added": f"file added: {self.subject}",
            "removed": f"file removed: {self.subject}",
            "content": f"file content changed: {self.subject}",
            "mode": f"executable bit changed: {self.subject}",
            "type": f"file type changed: {self.subject}",
            "target": f"symlink target changed: {self.subject}",
        }[self.kind]
        return f"{text} ({self.detail})" if self.detail else text


def snapshot(i: Inputs) -> dict[str, Any]:
    """The inputs record of Inputs: what the index and the registry's inputs record keep, for `diff`."""
    s = i.settings
    return {
        "hash": i.hash,
        "files": {f.path: [f.kind, f.executable, f.digest] for f in i.files},
        "settings": {"builder": s.builder, "target": s.target, "platform": s.platform,
                     "buildArgs": dict(s.build_args), "requires": dict(s.requires), "bases": dict(s.bases),
                     "remote": list(s.remote), "dockerfile": xxhash.xxh3_128_hexdigest(s.dockerfile)},
    }


def _mapping_changes(label: str, old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    out = []
    for key in sorted(set(old) | set(new)):
        if key not in old:
            out.append(Change("setting", f"{label} {key}", f"added: {new[key]}"))
        elif key not in new:
            out.append(Change("setting", f"{label} {key}", f"removed, was {old[key]}"))
        elif old[key] != new[key]:
            out.append(Change("setting", f"{label} {key}", f"{old[key]} -> {new[key]}"))
    return out


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """The changes from record `old` to `new`, most significant first: settings, then files."""
    changes: list[Change] = []
    so, sn = old.get("settings", {}), new["settings"]
    for key, label in SETTINGS:
        a, b = so.get(key), sn.get(key)
        if a == b:
            continue
        if isinstance(a, dict) or isinstance(b, dict):
            changes += _mapping_changes(label, a or {}, b or {})
        elif key == "dockerfile":
            changes.append(Change("setting", label))
        else:
            changes.append(Change("setting", label, f"{a or '(none)'} -> {b or '(none)'}"))
    fo, fn = old.get("files", {}), new["files"]
    changes += [Change("removed", p) for p in sorted(set(fo) - set(fn))]
    changes += [Change("added", p) for p in sorted(set(fn) - set(fo))]
    for p in sorted(set(fo) & set(fn)):
        (k1, x1, d1), (k2, x2, d2) = fo[p], fn[p]
        if k1 != k2:
            changes.append(Change("type", p, f"{k1} -> {k2}"))
        elif d1 != d2:
            changes.append(Change("target" if k2 == "symlink" else "content", p))
        elif x1 != x2:
            changes.append(Change("mode", p, "now executable" if x2 else "no longer executable"))
    return changes

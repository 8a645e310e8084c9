"""build.tagPolicy.inputDigest: Skaffold's digest of an artifact's input files, as its tag.

Skaffold (pkg/skaffold/tag/input_digest.go) lists the artifact's transitive source
dependencies (its own files, the Dockerfile among them, as absolute paths, then those of
every artifact it requires, repeats kept), appends the Dockerfile path as written in the
config (relative: Skaffold resolves it from its working folder, the skaffold.yaml's
here), sorts the list as strings, hashes each entry as md5 of its path relative to the
artifact's context (or the path as given when it cannot be made relative) followed by its
content (a non-regular file: the path alone; a missing file: skipped), and tags with the
hex sha256 of the JSON list of those hashes (Go's json.Encoder: compact, a newline after).
regless's input files (what COPY and ADD reach after .dockerignore) stand for Skaffold's
dependency list; the tag is known once they are listed, so it is set after hashing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


def _file_hash(path: str, workspace: str, cwd: str) -> str | None:
    """One path's entry of the inputDigest: its name and, for a regular file, its bytes (MD5, as skaffold)."""
    import hashlib  # only for skaffold.yaml's inputDigest tags: a regless.yaml restart need not import it

    h = hashlib.md5(usedforsecurity=False)
    real = path if os.path.isabs(path) else os.path.join(cwd, path)
    try:
        os.lstat(real)
    except FileNotFoundError:
        return None
    h.update((os.path.relpath(path, workspace) if os.path.isabs(path) else path).encode())
    if os.path.isfile(real) and not os.path.islink(real):
        with open(real, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
    return h.hexdigest()


def digest(paths: Iterable[str], workspace: Path, cwd: Path) -> str:
    """The inputDigest tag of these paths (absolute, or relative to `cwd`) for an artifact whose context
    is `workspace`."""
    import hashlib  # see _file_hash

    hashes = [h for p in sorted(paths) if (h := _file_hash(p, str(workspace), str(cwd))) is not None]
    return hashlib.sha256((json.dumps(hashes or None, separators=(",", ":")) + "\n").encode()).hexdigest()


def apply(prepared: list[Any]) -> list[Any]:
    """Set the inputDigest tag of each artifact whose tag policy asks for it, from the files hashing listed."""
    earlier: dict[str, Any] = {}
    return [tagged(p, earlier) for p in prepared]


def tagged(p: Any, earlier: dict[str, Any]) -> Any:
    """`p` with its inputDigest tag set if its tag policy asks for it; `earlier` holds the artifacts before
    it in dependency order (what it requires among them), and `p` is added to it."""
    def files(name: str) -> list[str]:
        q = earlier[name]
        own = {str(q.artifact.context / f.path) for f in q.inputs.files} | {str(q.artifact.dockerfile)}
        return sorted(own) + [f for r in q.artifact.requires if r.image in earlier for f in files(r.image)]

    earlier[p.artifact.name] = p
    a = p.artifact
    if a.input_digest is not None:
        written, cwd = a.input_digest
        tag = digest([*files(a.name), written], a.context, cwd)
        p = replace(p, artifact=replace(a, deploy_tag=tag, tags=(*a.tags, tag)))
        earlier[a.name] = p
    return p

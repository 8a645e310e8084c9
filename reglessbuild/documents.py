"""regless's JSON output: one document per command on stdout, the same envelope and words everywhere.

A script reads every command the same way: `version` (of this contract), `command`, the command's
data, and `warnings` (a list of strings, empty when there are none). Keys are camelCase, as in
Skaffold's output; an artifact's outcome is one of built, cached, retagged, failed, skipped (for
`plan` and `explain`: what `build` would do); values are data (numbers, names, digests, codes from a
fixed set), not prose: a `reason` or an `error` is a code with its detail fields, and a `message`
for people beside them (outcomes.py).
docs/json.md describes each document and docs/output.schema.json is the JSON Schema that
tests/test_json_contract.py holds every command's output to. Pure: these return strings and dicts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import xxhash

from .outcomes import Failure, Reason
from .report import Report

if TYPE_CHECKING:
    from .index import Result

VERSION = 2  # 2: `reason` and `error` are objects (a code, detail fields, a message), no longer sentences
UNRESOLVED = "unresolved"  # a base image's digest that was not asked of the registry (deps --offline)


def document(command: str, body: dict[str, Any], warnings: Iterable[str]) -> str:
    """The JSON document of `command` on stdout: the envelope around `body`."""
    return json.dumps({"version": VERSION, "command": command, **body, "warnings": list(warnings)}, indent=2)


def reason(r: Reason | None) -> dict[str, Any] | None:
    """A reason as a value: its code, the detail fields that apply, and the sentence for people."""
    if r is None:
        return None
    detail = {"reference": r.reference, "share": r.share, "builder": r.builder,
              "requires": list(r.requires) or None}
    return {"code": r.code.value, **{k: v for k, v in detail.items() if v is not None}, "message": str(r)}


def error(f: Failure | None) -> dict[str, Any] | None:
    """An error as a value: its code, the required artifacts it names (requiredFailed), the message."""
    if f is None:
        return None
    return {"code": f.code.value, **({"requires": list(f.requires)} if f.requires else {}), "message": f.message}


def _source(text: str) -> str:
    """`PATH (no crane, skopeo found)` -> `PATH`: where a tool choice came from, as a value."""
    return text.split(" ", 1)[0] if text else "default"


def build(report: Report) -> dict[str, Any]:
    """The body of build's document: each artifact's result, the phases, the tools and the counts."""
    return {
        "artifacts": [{
            "name": r.name, "image": r.image, "hash": r.hash or None, "digest": r.digest,
            "reference": r.reference if r.hash else None, "outcome": r.outcome.value, "reason": reason(r.reason),
            "source": r.source, "tags": list(r.tags), "seconds": {k: round(v, 3) for k, v in r.seconds.items()},
            "savedSeconds": round(r.saved_seconds, 3), "error": error(r.error), "why": list(r.why), "log": r.log,
        } for r in report.results],
        "phases": {k: round(v, 3) for k, v in report.phases.items()},
        "registryTool": {"name": report.registry_tool, "source": _source(report.registry_source)},
        "builder": {"name": report.builder, "source": _source(report.builder_source)},
        "registryCalls": report.registry_calls, "buildsStarted": report.builds_started,
        "replayed": report.replayed,
    }


def entry(h: str, e: Result) -> dict[str, Any]:
    """An index entry: what `cache ls`, `show` and `export` write (and `cache import` reads)."""
    from .index import result_to_json  # the cache commands': a build's document needs no index

    return {"hash": h, **result_to_json(e)}


def deps(prepared: Any, root: Any) -> dict[str, Any]:
    """Every input of an artifact's hash (run.Prepared): its files, Dockerfile, .dockerignore, build args,
    target, platform, base images with their digests (or `unresolved`), and required artifacts' hashes.
    `hash` is null when a base is unresolved: without its digest the hash is not the one `build` uses."""
    a, i = prepared.artifact, prepared.inputs
    s = i.settings
    resolved = dict(s.bases)
    ignore_path = prepared.ignore_file
    final = prepared.complete
    return {
        "artifact": a.name, "hash": i.hash if final else None,
        "context": _rel(a.context, root),
        "dockerfile": {"path": _rel(a.dockerfile, root), "hash": xxhash.xxh3_128_hexdigest(s.dockerfile)},
        "dockerignore": _rel(Path(ignore_path), root) if ignore_path else None,
        "builder": s.builder, "target": s.target, "platform": s.platform,
        "buildArgs": dict(s.build_args),
        "bases": [{"image": b, "digest": resolved.get(b, UNRESOLVED)} for b in prepared.bases],
        "requires": [{"artifact": r.image, "alias": r.alias or None, "hash": h if final else None}
                     for r, (_, h) in zip(a.requires, s.requires, strict=True)],
        "remote": list(s.remote),
        "files": [{"path": f.path, "type": f.kind, "executable": f.executable, "hash": f.digest} for f in i.files],
    }


def _rel(path: Any, root: Any) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)

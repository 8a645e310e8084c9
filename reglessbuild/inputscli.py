"""`regless hash` and `regless deps`: one artifact's workspace hash, and every input of it.

They take the pipeline's first step alone (pipeline.hashed): no decision, and for `deps` no registry
if need be: with --offline, or when the registry cannot be reached, base digests stay unresolved and
the file list is complete either way.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from . import documents, pipeline
from .console import Console
from .errors import RegistryError
from .events import Event
from .run import Prepared
from .wiring import connect, load_project

DEPS_DEADLINE = 10.0  # seconds `deps` retries a registry before it lists base digests as unresolved


def _one_artifact(args: argparse.Namespace, r: Console) -> Prepared:
    """Hash one artifact (and what it requires). `deps` works offline: with --offline, or when the
    registry cannot be reached, bases stay unresolved."""
    project = load_project(args, r)
    index, reg, _ = connect(args, r, project)
    try:
        art = project.artifact(args.artifact)
        offline = getattr(args, "offline", False)
        if args.command == "deps":  # an inspection: not worth a minute of retries
            reg.policy = dataclasses.replace(reg.policy, deadline=min(reg.policy.deadline, DEPS_DEADLINE))
        try:
            return pipeline.hashed(project, index, reg, r, [art.name], offline=offline)[-1]
        except RegistryError as exc:
            if args.command != "deps":
                raise
            r(Event("warning", None, f"base image digests are unresolved: {str(exc).splitlines()[0]}"))
            return pipeline.hashed(project, index, reg, r, [art.name], offline=True)[-1]
    finally:
        index.close()


def cmd_inputs(args: argparse.Namespace, r: Console) -> int:
    """`hash`: print the artifact's workspace hash; `deps`: list every input of it."""
    if getattr(args, "json", False):
        args.output = "json"
    prepared = _one_artifact(args, r)
    r.close()
    if args.command == "hash":
        print(documents.document("hash", {"artifact": prepared.artifact.name, "hash": prepared.inputs.hash},
                                 r.warnings) if args.output == "json" else prepared.inputs.hash, file=r.out)
        return 0
    doc = documents.deps(prepared, prepared.artifact.context)
    if args.output == "json":
        print(documents.document("deps", doc, r.warnings), file=r.out)
        return 0
    for line in deps_text(doc):
        print(line, file=r.out)
    return 0


def deps_text(doc: dict[str, Any]) -> list[str]:
    """Every input, one a line: the settings first (a word, then the value), then the files (hash first)."""
    lines = [f"dockerfile    {doc['dockerfile']['path']}  {doc['dockerfile']['hash']}"]
    lines += [f"dockerignore  {doc['dockerignore']}"] if doc["dockerignore"] else []
    lines += [f"{k:<13} {doc[k]}" for k in ("target", "platform") if doc[k]]
    lines += [f"build arg     {k}={v}" for k, v in doc["buildArgs"].items()]
    lines += [f"base          {b['image']}  {b['digest']}" for b in doc["bases"]]
    lines += [f"requires      {q['artifact']}{' as ' + q['alias'] if q['alias'] else ''}  {q['hash'] or 'unresolved'}"
              for q in doc["requires"]]
    lines += [f"remote        {u}" for u in doc["remote"]]
    lines += [f"{f['hash']}  {'x' if f['executable'] else '-'} {f['type']:<7} {f['path']}" for f in doc["files"]]
    return lines

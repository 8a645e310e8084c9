"""`regless plan` and `regless explain`: read the plan (pipeline.make) without acting on it.

`plan` says, for every artifact, what build would do, in build's words (`built`, `cached`,
`retagged`, `skipped`), why, and how the work splits into CI jobs; `explain` says what changed in one
artifact's inputs since its last build. Both render text or one JSON document (documents.py).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from . import documents, explain, fanout, pipeline, previous, shares
from .console import Console
from .errors import InputError
from .events import Event
from .outcomes import Outcome
from .run import Prepared
from .wiring import connect, load_project, writable

EXPLAIN_LINES = 20  # changes listed in text (--output json lists them all)


def cmd_plan(args: argparse.Namespace, r: Console) -> int:
    """What build would do and why, doing nothing; --jobs N splits the builds into CI shares."""
    writable(args.save, "--save")
    project = load_project(args, r)
    index, reg, _ = connect(args, r, project)
    try:
        the_plan = pipeline.make(project, index, reg, r, args.artifacts, no_cache=args.no_cache)
        prev = {p.artifact.name: previous.find(
            p.artifact.ref, p.artifact.tags, None, index, reg, enabled=project.registry.records,
            warn=lambda text: r(Event("warning", None, text)))
            for p in the_plan.prepared if the_plan.decision(p.artifact.name).outcome is Outcome.BUILT}
        why = {p.artifact.name: previous.why(prev[p.artifact.name], explain.snapshot(p.inputs))
               for p in the_plan.prepared if p.artifact.name in prev}
        fan = fanout.fanout(list(the_plan.prepared), dict(the_plan.decisions), index, args.jobs,  # seconds from records
                            {n: v.record.get("buildSeconds") for n, v in prev.items() if v.record})
    finally:
        index.close()
    r.close()
    rows = [{"name": p.artifact.name, "reference": str(p.target), "hash": p.inputs.hash,
             "outcome": (d := the_plan.decision(p.artifact.name)).outcome.value, "reason": documents.reason(d.reason),
             "source": str(d.source) if d.source else None, "why": list(why.get(p.artifact.name, ()))}
            for p in the_plan.prepared]
    rows += [{"name": s.name, "reference": None, "hash": None, "outcome": Outcome.SKIPPED.value,
              "reason": documents.reason(s.reason), "source": None, "why": []} for s in project.skipped]
    doc: dict[str, Any] = {"version": documents.VERSION, "command": "plan", "artifacts": rows,
                           "fanout": fan.to_json(args.jobs)}
    if args.matrix:
        doc["matrix"] = shares.matrix(fan.split, args.matrix)
    doc["warnings"] = list(r.warnings)
    if args.save:
        try:
            args.save.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--save {args.save}: {exc.strerror}") from exc
    if args.output == "json":
        print(json.dumps(doc, indent=2), file=r.out)
    elif args.matrix:  # for a CI step's output: echo "matrix=$(regless plan --jobs 3 --matrix github)"
        print(json.dumps(doc["matrix"], separators=(",", ":")), file=r.out)
    else:
        for line in _plan_text(r, rows):
            print(line, file=r.out)
        if args.jobs > 1:
            for sh in fan.split.shares:
                print(f"share {fan.split.label(sh.number)} (~{sh.cost:.0f}s): {' '.join(sh.artifacts) or '-'}",
                      file=r.out)
    return 0


def _plan_text(r: Console, rows: list[dict[str, Any]]) -> list[str]:
    """A plan's rows for people, in the JSON's words: `built web  REF  — no image for this hash`."""
    width = max(len(x["name"]) for x in rows)
    lines = []
    for x in rows:
        ref, reason = x["reference"] or "", x["reason"]["message"]
        lines.append(f"{r.paint(x['outcome'])} {x['name']:<{width}}  {ref}  — {reason}")
        lines += [f"      because {w}" for w in x["why"]]
    return lines


def cmd_explain(args: argparse.Namespace, r: Console) -> int:
    """What changed in an artifact's inputs since its last build (or --against an image), and what
    build would do; one level deeper for each required artifact that changed."""
    project = load_project(args, r)
    index, reg, _ = connect(args, r, project)

    def earlier(p: Prepared, against: str | None = None) -> previous.Previous:
        return previous.find(p.artifact.ref, p.artifact.tags, p.target, index, reg, against=against,
                             enabled=project.registry.records, warn=lambda text: r(Event("warning", None, text)))

    try:
        art = project.artifact(args.artifact)
        the_plan = pipeline.make(project, index, reg, r, [art.name])
        prepared, decision = the_plan.prepared[-1], the_plan.decision(art.name)
        last = earlier(prepared, args.against)
        changes = explain.diff(last.record, explain.snapshot(prepared.inputs)) if last.record else []
        # one level deep: why each required artifact that changed changed
        by_name = {p.artifact.name: p for p in the_plan.prepared}
        named = {(q.alias or q.image): q.image for q in art.requires}  # the record keys them by build arg
        deeper: dict[str, list[explain.Change]] = {}
        for c in changes:
            key = c.subject.removeprefix("required artifact ")
            if c.kind == "setting" and c.subject.startswith("required artifact ") and named.get(key) in by_name:
                req_p = by_name[named[key]]
                req = earlier(req_p)
                deeper[key] = explain.diff(req.record, explain.snapshot(req_p.inputs)) if req.record else []
    finally:
        index.close()
    r.close()
    if args.output == "json":
        def as_json(cs: list[explain.Change]) -> list[dict[str, str | None]]:
            return [{"kind": c.kind, "subject": c.subject, "detail": c.detail or None} for c in cs]
        r.line(documents.document("explain", {
            "artifact": art.name, "hash": prepared.inputs.hash,
            "previousHash": last.record["hash"] if last.record else None, "comparedWith": last.source or None,
            "outcome": decision.outcome.value, "reason": documents.reason(decision.reason),
            "changes": as_json(changes), "requiredChanges": {k: as_json(v) for k, v in deeper.items()}},
            r.warnings))
        return 0
    verdict = {Outcome.CACHED: "is cached", Outcome.RETAGGED: "would be retagged", Outcome.BUILT: "would be built"}
    where = "its last recorded build" if last.source == "index" else f"the inputs record of {last.source}"
    if last.record is None:
        r.line(f"{art.name}: {last.missing}, so there is nothing to compare with")
    elif not changes:
        r.line(f"{art.name}: nothing changed since {where} (hash {last.record['hash']})")
    else:
        r.line(f"{art.name}: {len(changes)} change{'s' if len(changes) != 1 else ''} since {where} "
               f"(hash {last.record['hash']} -> {prepared.inputs.hash}), most significant first:")
        for c in changes[:EXPLAIN_LINES]:
            r.line(f"  {c}")
            for sub in deeper.get(c.subject.removeprefix("required artifact "), [])[:EXPLAIN_LINES]:
                r.line(f"      {sub}")
        if len(changes) > EXPLAIN_LINES:
            r.line(f"  ... and {len(changes) - EXPLAIN_LINES} more (--output json lists them all)")
    r.line(f"{art.name} {verdict[decision.outcome]}: {decision.reason}")
    return 0

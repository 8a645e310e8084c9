"""Command line: argument parsing, rendering, exit codes — nothing else."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import __version__
from .errors import InputError, RegistryError, ReglessError

# A command imports what it uses, when it runs: `regless version` and `--help` load none of the
# modules below (not even typing or dataclasses), and a restart none of the builders' or the cache
# command's (README "Performance"). mypy reads this name as typing.TYPE_CHECKING.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Sequence

    from . import config, registry, run
    from .console import Console
    from .index import Index

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2
DEPS_DEADLINE = 10.0  # seconds `deps` retries a registry before it lists base digests as unresolved

EPILOG = """\
examples:
  regless build                       build what changed, skip the rest
  regless build app --output json     one artifact (and what it requires), JSON result
  regless plan                        what build would do, doing nothing
  regless explain app                 what changed since app's last build
  regless hash app                    print app's workspace hash
  regless deps app --offline          every input of app's hash, asking no registry

exit codes: 0 done, 1 an artifact failed, 2 bad input, 3 registry unreachable or refused
"""


def _jobs(text: str) -> int:
    """--jobs N: a whole number of 1 or more (argparse makes anything else a usage error, exit 2)."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of jobs (1 or more)")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-f", "--file", type=Path, help="config file (default: regless.yaml, else skaffold.yaml, in this folder)")
    common.add_argument("--cache-dir", type=Path, help="index folder (default: $REGLESS_CACHE_DIR, "
                        "$XDG_CACHE_HOME/regless or ~/.cache/regless)")
    common.add_argument("--default-repo", help="prefix for image names without a registry, e.g. "
                        "registry.example.com/team (overrides defaultRepo); for skaffold.yaml Skaffold's rules, "
                        "and $SKAFFOLD_DEFAULT_REPO when not given")
    common.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                        help="plain http / no TLS verification for this registry (adds to registry.insecure)")
    common.add_argument("-p", "--profile", action="append", default=[], metavar="NAME[,NAME]",
                        help="skaffold.yaml: activate these profiles (--profile=-NAME turns an auto-activated one off); "
                        "default $SKAFFOLD_PROFILE")
    common.add_argument("--skip-unsupported", action="store_true",
                        help="skaffold.yaml: leave out artifacts regless cannot build (jib, buildpacks, ko, custom, "
                        "bazel) and those that require them; they are listed as skipped")
    common.add_argument("--output", choices=("text", "json"), default="text", help="result format on stdout")
    common.add_argument("--platform", action="append", default=[], metavar="OS/ARCH[,OS/ARCH...]",
                        help="build every artifact for these platforms (several: one image index), over the config")
    common.add_argument("-v", "--verbose", action="store_true", help="also say why each artifact is built")
    common.add_argument("-q", "--quiet", action="store_true", help="no builder output, results only")

    p = argparse.ArgumentParser(prog="regless", description="Build the images of a multi-image project without a "
                                "Docker daemon, and skip every build whose inputs did not change.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"regless {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    b = sub.add_parser("build", parents=[common], help="build and push what changed, skip the rest",
                       epilog="example: regless build --file-output builds.json",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("artifacts", nargs="*", metavar="ARTIFACT", help="image names from the config (default: all)")
    b.add_argument("--no-cache", action="store_true", help="ignore index and registry hits: build everything")
    b.add_argument("--keep-images", action="store_true", help="keep the images built in buildah's storage once "
                   "pushed (they are removed by default: the registry holds them)")
    b.add_argument("--no-records", action="store_true",
                   help="push no inputs record beside the images built (as registry.records: false)")
    b.add_argument("--file-output", type=Path, help="write Skaffold's build output JSON here (skaffold deploy -a)")
    b.add_argument("--share", metavar="K/N", help="build only share K of N (the split of regless plan --jobs N); "
                   "wait in the registry for what another share builds")
    b.add_argument("--plan", type=Path, metavar="FILE", help="with --share: take the split from this file "
                   "(regless plan --save FILE) rather than working it out again")
    b.add_argument("--wait-timeout", default="30m", metavar="DURATION",
                   help="with --share: how long to wait for an artifact another share builds (default 30m)")
    pl = sub.add_parser("plan", parents=[common], help="what build would do and why, doing nothing",
                        epilog="example: regless plan --output json")
    pl.add_argument("artifacts", nargs="*", metavar="ARTIFACT")
    pl.add_argument("--no-cache", action="store_true", help="plan as if every hit were ignored")
    pl.add_argument("--jobs", type=_jobs, default=1, metavar="N",
                    help="split the artifacts to build into at most N shares for CI jobs (default 1)")
    pl.add_argument("--matrix", choices=("github", "gitlab"), help="the shares as a CI matrix: GitHub Actions' "
                    "strategy.matrix or GitLab's parallel:matrix (in the JSON; alone on stdout with text output)")
    pl.add_argument("--save", type=Path, metavar="FILE", help="also write the JSON plan here, for "
                    "regless build --share K/N --plan FILE")
    ex = sub.add_parser("explain", parents=[common], help="why an artifact would rebuild: what changed since its "
                        "last build", epilog="example: regless explain app")
    ex.add_argument("artifact", metavar="ARTIFACT")
    ex.add_argument("--against", metavar="REF", help="compare with the inputs record of this image: a tag or a "
                    "digest of the artifact's image, or a full reference (default: the last build this cache "
                    "knows, else the record of the first of the artifact's tags that has one)")
    for name, text in (("hash", "print an artifact's workspace hash"), ("deps", "list an artifact's input files")):
        s = sub.add_parser(name, parents=[common], help=text, epilog=f"example: regless {name} app")
        s.add_argument("artifact", metavar="ARTIFACT")
        if name == "deps":
            s.add_argument("--json", action="store_true", help="the same as --output json")
            s.add_argument("--offline", action="store_true", help="ask no registry: base image digests are "
                           "listed as unresolved (as when the registry cannot be reached)")
    sub.add_parser("version", help="print the version", epilog="example: regless version")
    _cache_parser(sub, common)
    return p


CACHE_EPILOG = """\
examples:
  regless cache ls --output json
  regless cache prune --older-than 30d --keep 5
  regless cache verify --fix
  regless cache add registry.example.com/team/app:0123456789abcdef0123456789abcdef
  regless cache export index.json      (on one runner)
  regless cache import index.json      (on another)
"""


def _cache_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    c = sub.add_parser("cache", help="inspect and share the local index", epilog=CACHE_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    cs = c.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    ls = cs.add_parser("ls", parents=[common], help="list entries: hash, references, digest, age")
    ls.add_argument("--json", action="store_true", help="the same as --output json")
    show = cs.add_parser("show", parents=[common], help="one entry in full")
    show.add_argument("hash", metavar="HASH", help="a hash or a unique prefix")
    rm = cs.add_parser("rm", parents=[common], help="remove entries")
    rm.add_argument("hashes", nargs="+", metavar="HASH")
    pr = cs.add_parser("prune", parents=[common], help="remove old entries")
    pr.add_argument("--older-than", metavar="DURATION", help="e.g. 12h, 30d, 2w")
    pr.add_argument("--keep", type=int, metavar="N", help="keep the N newest entries of each image")
    pr.add_argument("--dry-run", action="store_true", help="list what would go, remove nothing")
    pr.add_argument("--builder-storage", action="store_true", help="empty regless's own buildah storage "
                    "(images and layer cache)")
    ve = cs.add_parser("verify", parents=[common], help="check every entry's references in the registry")
    ve.add_argument("--fix", action="store_true", help="drop entries none of whose references is alive")
    ad = cs.add_parser("add", parents=[common], help="record IMAGE:HASH found in the registry")
    ad.add_argument("reference", metavar="IMAGE:HASH")
    ex = cs.add_parser("export", parents=[common], help="write the entries as JSON lines ('-': stdout)")
    ex.add_argument("path", metavar="FILE")
    im = cs.add_parser("import", parents=[common], help="merge entries from an export file")
    im.add_argument("path", metavar="FILE", type=Path)


def _project(args: argparse.Namespace, r: Console) -> config.Project:
    import dataclasses

    from . import config, multiplatform
    from .events import Event

    path = args.file if args.file else config.find_config(Path.cwd())
    project = config.load(path, default_repo=args.default_repo, profiles=tuple(args.profile),
                          skip_unsupported=args.skip_unsupported)
    if args.insecure_registry:
        project = dataclasses.replace(project, registry=dataclasses.replace(
            project.registry, insecure=(*project.registry.insecure, *args.insecure_registry)))
    if args.platform:
        project = multiplatform.with_platforms(project, args.platform)
    if getattr(args, "no_records", False):
        project = dataclasses.replace(project, registry=dataclasses.replace(project.registry, records=False))
    for w in project.warnings:
        r(Event("warning", None, w))
    args.config_kind = project.kind
    return project


def _wiring(args: argparse.Namespace, r: Console, project: config.Project) -> tuple[Index, registry.Reliable, str]:
    from .wiring import open_index, reliable

    reg, source = reliable(project.registry, project.registry.insecure, r)
    return open_index(args.cache_dir, r), reg, source


def _share(args: argparse.Namespace) -> Callable[..., Any] | None:
    """--share K/N (with --plan FILE, --wait-timeout): how the run is narrowed to one share, or None."""
    if args.share is None:
        if args.plan is not None:
            raise InputError("--plan FILE goes with --share K/N", hint="e.g. --share 1/3 --plan plan.json")
        return None
    from . import cache, fanout, shares

    k_n = shares.parse_share(args.share)
    timeout = cache.parse_duration(args.wait_timeout)
    saved = fanout.load_split(args.plan) if args.plan else None
    if saved is not None:
        fanout.check(k_n, saved)  # before any work
    return lambda prepared, _decisions: fanout.select(k_n, prepared, saved=saved, timeout=timeout)


def cmd_build(args: argparse.Namespace, r: Console) -> int:
    import dataclasses

    from . import IMPORTED, documents, report, run, storage
    from .builders import choose as choose_builder
    from .buildlog import BuildLogs
    from .events import Event
    from .wiring import default_cache_dir, writable

    started = time.perf_counter()  # imports and arguments done: startup before, config from here to run.build
    writable(args.file_output, "--file-output")
    if args.share is not None:
        from . import cache
        from .shares import parse_share

        parse_share(args.share)  # bad input is refused before any work
        cache.parse_duration(args.wait_timeout)
    project = _project(args, r)
    if not project.artifacts:
        raise InputError(f"{project.path}: every artifact was left out by --skip-unsupported; nothing to build")
    r.width = max(len(a.name) for a in (*project.artifacts, *project.skipped))
    r.logs = BuildLogs((args.cache_dir or default_cache_dir()) / "logs")
    if project.builder.kind == "buildah":
        own = storage.choose(project.builder.buildah.storage_driver)
        if own.own:  # else CONTAINERS_STORAGE_CONF: the user's choice
            os.environ["CONTAINERS_STORAGE_CONF"] = str(own.conf)
            r(Event("note", None, f"buildah's images go to regless's own storage {own.graph}"
                    + ("" if args.keep_images else "; each is removed once pushed (--keep-images keeps them)")))
    builder = choose_builder(project.builder, push_deadline=project.registry.timeout, keep_images=args.keep_images)
    index, reg, reg_source = _wiring(args, r, project)
    configured = time.perf_counter()
    try:
        rep = run.build(project, index, reg, builder.builder, r, names=args.artifacts, no_cache=args.no_cache,
                        registry_source=reg_source, builder_source=builder.source, select=_share(args))
    finally:
        index.close()
    if project.builder.kind == "buildah" and not args.keep_images:
        required = {q.image for a in project.artifacts for q in a.requires if q.alias}
        storage.remove([f"{x.image}@{x.digest}" for x in rep.results if x.name in required and x.digest],
                       project.builder.buildah.storage_driver)
    skipped = tuple(report.ArtifactResult(name=s.name, image=s.name, hash="", outcome="skipped", reason=s.reason)
                    for s in project.skipped)
    rank = {a.name: i for i, a in enumerate(project.artifacts)}
    done = sorted(rep.results, key=lambda x: rank.get(x.name, len(rank)))  # the config's order
    done = [dataclasses.replace(x, log=str(p)) if (p := r.logs.path(x.name)) else x for x in done]
    rep = dataclasses.replace(rep, results=(*done, *skipped), warnings=tuple(r.warnings),
                              phases={"startup": started - IMPORTED, "config": configured - started, **rep.phases})
    r.close()
    if args.output == "text":
        r.results(rep.results)
    r.line(documents.document("build", documents.build(rep), r.warnings) if args.output == "json"
           else report.summary(rep))
    if args.file_output:
        try:
            args.file_output.write_text(report.skaffold_builds(rep, [a.name for a in project.artifacts]) + "\n",
                                        encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--file-output {args.file_output}: {exc.strerror}") from exc
    return rep.exit_code


def cmd_plan(args: argparse.Namespace, r: Console) -> int:
    import json

    from . import documents, explain, previous, run
    from .events import Event
    from .wiring import writable

    writable(args.save, "--save")
    project = _project(args, r)
    index, reg, _ = _wiring(args, r, project)
    try:
        order = run.closure(project, args.artifacts)
        prepared = run.prepare(project, order, index, reg, r)
        facts = run.facts(prepared, index, reg, no_cache=args.no_cache, concurrency=project.registry.concurrency)
        decisions = {p.artifact.name: run.plan.decide(facts[p.artifact.name]) for p in prepared}
        prev = {p.artifact.name: previous.find(
            p.artifact.ref, p.artifact.tags, None, index, reg, enabled=project.registry.records,
            warn=lambda text: r(Event("warning", None, text)))
            for p in prepared if decisions[p.artifact.name].action is run.plan.Action.BUILD}
        why = {p.artifact.name: previous.why(prev[p.artifact.name], explain.snapshot(p.inputs))
               for p in prepared if p.artifact.name in prev}
        from . import fanout, shares

        fan = fanout.fanout(prepared, decisions, index, args.jobs,  # build seconds from inputs records
                            {n: v.record.get("buildSeconds") for n, v in prev.items() if v.record})
    finally:
        index.close()
    r.close()
    rows = []
    for p in prepared:
        d = decisions[p.artifact.name]
        rows.append({"name": p.artifact.name, "reference": str(p.target), "hash": p.inputs.hash,
                     "outcome": documents.outcome(d.action.value), "reason": d.reason,
                     "source": str(d.source) if d.source else None, "why": list(why.get(p.artifact.name, ()))})
    rows += [{"name": s.name, "reference": None, "hash": None, "outcome": "skipped", "reason": s.reason,
              "source": None, "why": []} for s in project.skipped]
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
        width = max(len(x["name"]) for x in rows)
        for x in rows:  # a plan says what build would do: `build`, where build's result says `built`
            word = "build" if x["outcome"] == "built" else x["outcome"]
            print(f"{r.paint(word)} {x['name']:<{width}}  {x['reference'] or ''}  — {x['reason']}", file=r.out)
            for w in x.get("why", ()):
                print(f"      because {w}", file=r.out)
        if args.jobs > 1:
            for sh in fan.split.shares:
                print(f"share {fan.split.label(sh.number)} (~{sh.cost:.0f}s): {' '.join(sh.artifacts) or '-'}",
                      file=r.out)
    return EXIT_OK


def _one_artifact(args: argparse.Namespace, r: Console) -> run.Prepared:
    """Hash one artifact (and what it requires). `deps` works offline: with --offline, or when the registry cannot be reached, bases stay unresolved."""
    import dataclasses

    from . import run
    from .events import Event

    project = _project(args, r)
    index, reg, _ = _wiring(args, r, project)
    try:
        art = project.artifact(args.artifact)
        order = run.closure(project, [art.name])
        offline = getattr(args, "offline", False)
        if args.command == "deps":  # an inspection: not worth a minute of retries
            reg.policy = dataclasses.replace(reg.policy, deadline=min(reg.policy.deadline, DEPS_DEADLINE))
        try:
            prepared = run.prepare(project, order, index, reg, r, offline=offline)[-1]
        except RegistryError as exc:
            if args.command != "deps":
                raise
            r(Event("warning", None, f"base image digests are unresolved: {str(exc).splitlines()[0]}"))
            prepared = run.prepare(project, order, index, reg, r, offline=True)[-1]
        return prepared
    finally:
        index.close()


def cmd_inputs(args: argparse.Namespace, r: Console) -> int:
    from . import documents

    if getattr(args, "json", False):
        args.output = "json"
    prepared = _one_artifact(args, r)
    r.close()
    if args.command == "hash":
        print(documents.document("hash", {"artifact": prepared.artifact.name, "hash": prepared.inputs.hash},
                                 r.warnings) if args.output == "json" else prepared.inputs.hash, file=r.out)
        return EXIT_OK
    doc = documents.deps(prepared, prepared.artifact.context)
    if args.output == "json":
        print(documents.document("deps", doc, r.warnings), file=r.out)
        return EXIT_OK
    for line in _deps_text(doc):
        print(line, file=r.out)
    return EXIT_OK


def _deps_text(doc: dict[str, Any]) -> list[str]:
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


def cmd_explain(args: argparse.Namespace, r: Console) -> int:
    from . import documents, explain, previous, run
    from .events import Event

    project = _project(args, r)
    index, reg, _ = _wiring(args, r, project)
    def warn(text: str) -> None:
        r(Event("warning", None, text))

    try:
        art = project.artifact(args.artifact)
        closure = run.prepare(project, run.closure(project, [art.name]), index, reg, r)
        prepared = closure[-1]
        decision = run.plan.decide(run.facts([prepared], index, reg, no_cache=False,
                                             concurrency=project.registry.concurrency)[art.name])

        def earlier(p: run.Prepared, against: str | None = None) -> previous.Previous:
            return previous.find(p.artifact.ref, p.artifact.tags, p.target, index, reg, against=against,
                                 enabled=project.registry.records, warn=warn)

        last = earlier(prepared, args.against)
        changes = explain.diff(last.record, explain.snapshot(prepared.inputs)) if last.record else []
        # one level deep: why each required artifact that changed changed
        by_name = {p.artifact.name: p for p in closure}
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
            "outcome": documents.outcome(decision.action.value), "reason": decision.reason,
            "changes": as_json(changes), "requiredChanges": {k: as_json(v) for k, v in deeper.items()}},
            r.warnings))
        return EXIT_OK
    verdict = {"cached": "is cached", "retagged": "would be retagged", "build": "would be built"}
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
    r.line(f"{art.name} {verdict[decision.action.value]}: {decision.reason}")
    return EXIT_OK


EXPLAIN_LINES = 20


def cmd_cache(args: argparse.Namespace, r: Console) -> int:
    from . import cachecli

    return cachecli.cmd_cache(args, r)


COMMANDS: dict[str, Callable[[argparse.Namespace, Console], int]] = {
    "build": cmd_build, "plan": cmd_plan, "explain": cmd_explain, "hash": cmd_inputs, "deps": cmd_inputs, "cache": cmd_cache,
}


def _on_signal(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "version":
        from .native import engine

        try:
            print(f"regless {__version__}\nhashing: {engine()}", flush=True)
        except BrokenPipeError:  # `regless version | head -1`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    import signal

    from . import proc, runtime
    from .console import Console
    from .events import Event

    signal.signal(signal.SIGTERM, _on_signal)
    r = Console(sys.stdout, sys.stderr, quiet=args.quiet, verbose=args.verbose,
                json_output=getattr(args, 'output', 'text') == 'json')
    if rt := runtime.ensure():  # no login session: the tools get a runtime folder of the user's own
        os.environ["XDG_RUNTIME_DIR"] = str(rt.path)
        r(Event("note", None, f"{rt.reason}; buildah, skopeo and crane get {rt.path} (0700) as their runtime folder"))
    try:
        return COMMANDS[args.command](args, r)
    except ReglessError as exc:
        r.close()
        message = str(exc)
        if getattr(args, "config_kind", None) == "skaffold":
            from .skaffold import in_skaffold_words

            message = in_skaffold_words(message)
        print(f"regless: error: {message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        r.close()
        proc.terminate_all()
        signum = exc.args[0] if exc.args else signal.SIGINT
        print("regless: cancelled; builders stopped", file=sys.stderr)
        return 128 + int(signum)
    except BrokenPipeError:
        # the reader went away (`regless deps app | head`): stop quietly, as other Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

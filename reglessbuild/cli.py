"""Command line: argument parsing, rendering, exit codes — nothing else."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Callable, Sequence, TextIO

from . import __version__, config, proc, registry, report, run
from .builders import choose as choose_builder
from .errors import InputError, ReglessError
from .events import Event
from .index import Index
from .registry.retry import Policy

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2
COLOURS = {"cached": "34", "retagged": "36", "built": "32", "failed": "31", "skipped": "33", "build": "32"}

EPILOG = """\
examples:
  regless build                       build what changed, skip the rest
  regless build app --output json     one artifact (and what it requires), JSON result
  regless plan                        what build would do, doing nothing
  regless hash app                    print app's workspace hash
  regless deps app --json             the input files of app with their content hashes

exit codes: 0 done, 1 an artifact failed, 2 bad input, 3 registry unreachable or refused
"""


def default_cache_dir() -> Path:
    if d := os.environ.get("REGLESS_CACHE_DIR"):
        return Path(d)
    if d := os.environ.get("XDG_CACHE_HOME"):
        return Path(d) / "regless"
    return Path.home() / ".cache" / "regless"


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-f", "--file", type=Path, help="config file (default: regless.yaml in this folder)")
    common.add_argument("--cache-dir", type=Path, help="index folder (default: $REGLESS_CACHE_DIR, "
                        "$XDG_CACHE_HOME/regless or ~/.cache/regless)")
    common.add_argument("--default-repo", help="prefix for image names without a registry, e.g. "
                        "registry.example.com/team (overrides defaultRepo)")
    common.add_argument("--output", choices=("text", "json"), default="text", help="result format on stdout")
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
    b.add_argument("--file-output", type=Path, help="write Skaffold's build output JSON here (skaffold deploy -a)")
    pl = sub.add_parser("plan", parents=[common], help="what build would do and why, doing nothing",
                        epilog="example: regless plan --output json")
    pl.add_argument("artifacts", nargs="*", metavar="ARTIFACT")
    pl.add_argument("--no-cache", action="store_true", help="plan as if every hit were ignored")
    for name, text in (("hash", "print an artifact's workspace hash"), ("deps", "list an artifact's input files")):
        s = sub.add_parser(name, parents=[common], help=text, epilog=f"example: regless {name} app")
        s.add_argument("artifact", metavar="ARTIFACT")
        if name == "deps":
            s.add_argument("--json", action="store_true", help="JSON lines: path, type, executable, hash")
    sub.add_parser("version", help="print the version", epilog="example: regless version")
    return p


class Renderer:
    """Turns events into lines: results on stdout, progress and builder output on stderr."""

    def __init__(self, args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
        self.args, self.out, self.err = args, out, err
        self.colour = out.isatty() and not os.environ.get("NO_COLOR")
        self.json = args.output == "json"
        self.lock = threading.Lock()
        self.width = 0

    def paint(self, word: str) -> str:
        text = f"{word:<8}"
        return f"\033[{COLOURS[word]}m{text}\033[0m" if self.colour and word in COLOURS else text

    def __call__(self, ev: Event) -> None:
        with self.lock:
            self._handle(ev)

    def _handle(self, ev: Event) -> None:
        quiet = self.args.quiet
        if ev.kind == "line" and not quiet:
            print(f"[{ev.artifact}] {ev.message}", file=self.err, flush=True)
        elif ev.kind in ("build", "retag", "push", "tag") and not quiet:
            print(f"[{ev.artifact}] {ev.message}", file=self.err, flush=True)
        elif ev.kind == "warning":
            print(f"warning: [{ev.artifact}] {ev.message}" if ev.artifact else f"warning: {ev.message}",
                  file=self.err, flush=True)
        elif ev.kind == "outcome" and not self.json:
            r: report.ArtifactResult = ev.data["result"]  # type: ignore[assignment]
            self.result_line(r)

    def result_line(self, r: report.ArtifactResult) -> None:
        secs = sum(v for k, v in r.seconds.items() if k != "hash")
        line = f"{self.paint(r.outcome)} {r.name:<{self.width}}  {r.reference}"
        if r.outcome == "retagged" and r.source:
            line += f"  (from {r.source})"
        if r.outcome == "built":
            line += f"  ({secs:.1f}s)"
        if self.args.verbose and r.reason and r.outcome == "built":
            line += f"  — {r.reason}"
        print(line, file=self.out, flush=True)
        if r.error:
            print(f"         error: {r.error}", file=self.out, flush=True)
            for tail in r.tail:
                print(f"         | {tail}", file=self.out)


def _project(args: argparse.Namespace) -> config.Project:
    path = args.file if args.file else config.find_config(Path.cwd())
    return config.load(path, default_repo=args.default_repo)


def _wiring(args: argparse.Namespace, project: config.Project) -> tuple[Index, registry.Reliable, str]:
    choice = registry.choose(project.registry.tool, insecure=project.registry.insecure)
    reg = registry.Reliable(choice.registry, Policy(deadline=project.registry.timeout))
    index = Index.open(args.cache_dir or default_cache_dir())
    return index, reg, choice.source


def cmd_build(args: argparse.Namespace, r: Renderer) -> int:
    project = _project(args)
    r.width = max(len(a.name) for a in project.artifacts)
    builder = choose_builder(project.builder)
    index, reg, reg_source = _wiring(args, project)
    for m in index.moved:
        r(Event("warning", None, f"the index could not be read ({m.reason}); moved it to {m.path} and started anew"))
    try:
        rep = run.build(project, index, reg, builder.builder, r, names=args.artifacts, no_cache=args.no_cache,
                        registry_source=reg_source, builder_source=builder.source)
    finally:
        index.close()
    if args.output == "json":
        print(report.to_json(rep), file=r.out)
    else:
        print(report.summary(rep), file=r.out)
    if args.file_output:
        args.file_output.write_text(report.skaffold_builds(rep) + "\n", encoding="utf-8")
    return EXIT_FAILED if rep.failed else EXIT_OK


def cmd_plan(args: argparse.Namespace, r: Renderer) -> int:
    project = _project(args)
    index, reg, _ = _wiring(args, project)
    try:
        order = run.closure(project, args.artifacts)
        prepared = run.prepare(project, order, index, reg, lambda e: None)
        facts = run.facts(prepared, index, reg, no_cache=args.no_cache, concurrency=project.registry.concurrency)
    finally:
        index.close()
    rows = []
    for p in prepared:
        d = run.plan.decide(facts[p.artifact.name])
        rows.append({"name": p.artifact.name, "reference": str(p.target), "hash": p.inputs.hash,
                     "action": d.action.value, "reason": d.reason, "source": str(d.source) if d.source else None})
    if args.output == "json":
        print(json.dumps({"version": 1, "artifacts": rows}, indent=2), file=r.out)
    else:
        width = max(len(x["name"]) for x in rows)
        for x in rows:
            print(f"{r.paint(x['action'])} {x['name']:<{width}}  {x['reference']}  — {x['reason']}", file=r.out)
    return EXIT_OK


def cmd_inputs(args: argparse.Namespace, r: Renderer) -> int:
    project = _project(args)
    index, reg, _ = _wiring(args, project)
    try:
        order = run.closure(project, [args.artifact])
        prepared = run.prepare(project, order, index, reg, lambda e: None)[-1]
    finally:
        index.close()
    if args.command == "hash":
        print(prepared.inputs.hash, file=r.out)
        return EXIT_OK
    for f in prepared.inputs.files:
        if getattr(args, "json", False):
            print(json.dumps({"path": f.path, "type": f.kind, "executable": f.executable, "hash": f.digest}),
                  file=r.out)
        else:
            print(f"{f.digest}  {'x' if f.executable else '-'} {f.kind:<7} {f.path}", file=r.out)
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace, Renderer], int]] = {
    "build": cmd_build, "plan": cmd_plan, "hash": cmd_inputs, "deps": cmd_inputs,
}


def _on_signal(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "version":
        print(f"regless {__version__}")
        return EXIT_OK
    signal.signal(signal.SIGTERM, _on_signal)
    r = Renderer(args, sys.stdout, sys.stderr)
    try:
        return COMMANDS[args.command](args, r)
    except ReglessError as exc:
        print(f"regless: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        proc.terminate_all()
        signum = exc.args[0] if exc.args else signal.SIGINT
        print("regless: cancelled; builders stopped", file=sys.stderr)
        return 128 + int(signum)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

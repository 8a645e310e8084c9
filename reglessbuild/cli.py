"""Command line: argument parsing, the dispatch to a command's module, exit codes — nothing else.

The commands live in a module per group: buildcli (build), plancli (plan, explain), inputscli (hash,
deps) and cachecli (cache); each renders its own text or JSON document.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path

from . import __version__
from .errors import ReglessError

# A command imports what it uses, when it runs: `regless version` and `--help` load none of the
# command modules (not even typing or dataclasses), and a restart none of the builders' or the cache
# command's (README "Performance"). mypy reads this name as typing.TYPE_CHECKING.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .console import Console

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2

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


def _command_of(argv: Sequence[str]) -> str | None:
    """The command `argv` names before any option (the top level takes only -h and --version), else None."""
    return argv[0] if argv and argv[0] in (*COMMANDS, "version") else None


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser. Given the `command` the arguments name, only that command's own parser
    gets its arguments; the others are there by name and help only (what the top level's choices and its
    errors list), since argparse uses only the named command's parser: building every command's
    arguments took longer than parsing one command line."""
    def full(name: str) -> bool:
        return command is None or command == name

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-f", "--file", type=Path,
                        help="config file (default: regless.yaml, else skaffold.yaml, in this folder)")
    common.add_argument("--cache-dir", type=Path, help="index folder (default: $REGLESS_CACHE_DIR, "
                        "$XDG_CACHE_HOME/regless or ~/.cache/regless)")
    common.add_argument("--default-repo", help="prefix for image names without a registry, e.g. "
                        "registry.example.com/team (overrides defaultRepo); for skaffold.yaml Skaffold's rules, "
                        "and $SKAFFOLD_DEFAULT_REPO when not given")
    common.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                        help="plain http / no TLS verification for this registry (adds to registry.insecure)")
    common.add_argument("-p", "--profile", action="append", default=[], metavar="NAME[,NAME]",
                        help="skaffold.yaml: activate these profiles (--profile=-NAME turns an auto-activated one "
                        "off); default $SKAFFOLD_PROFILE")
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
    for name, add in (("build", _build_parser), ("plan", _plan_parser), ("explain", _explain_parser),
                      ("hash", _inputs_parser), ("deps", _inputs_parser)):
        if full(name):
            add(sub, common, name)
        else:
            sub.add_parser(name, help=HELP[name])
    sub.add_parser("version", help="print the version", epilog="example: regless version")
    if full("cache"):
        _cache_parser(sub, common)
    else:
        sub.add_parser("cache", help=HELP["cache"])
    sv = sub.add_parser("server", help=HELP["server"], epilog=SERVER_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    sv.add_argument("action", nargs="?", choices=("status", "stop"), default="status",
                    help="status (the default): whether one runs, since when, how much it served; stop: end it")
    sv.set_defaults(quiet=False, verbose=False)
    return p


Sub = argparse._SubParsersAction  # the top level's commands
HELP = {"build": "build and push what changed, skip the rest", "plan": "what build would do and why, doing nothing",
        "explain": "why an artifact would rebuild: what changed since its last build",
        "hash": "print an artifact's workspace hash", "deps": "list an artifact's input files",
        "cache": "inspect and share the local index",
        "server": "the warm server: a process of yours that starts commands without the imports"}
SERVER_EPILOG = """\
build, plan, explain, hash, deps and cache are run by a warm server where one runs for this install: a
process of yours that has imported regless once and forks a copy of itself per command line, which then
runs as it would have here (your folder, environment and terminal). The first such command starts it;
it ends after 15 minutes without one (REGLESS_SERVER_IDLE=SECONDS), or once regless's code changed.
REGLESS_SERVER=0 turns it off; it is off in a CI job (CI, JENKINS_URL, TF_BUILD or
TEAMCITY_VERSION set), unless REGLESS_SERVER=1.

examples:
  regless server            is one running?
  regless server stop       end it (commands already running finish)
"""


def _build_parser(sub: Sub[argparse.ArgumentParser], common: argparse.ArgumentParser, name: str) -> None:
    """`regless build` and its arguments."""
    b = sub.add_parser(name, parents=[common], help=HELP[name],
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


def _plan_parser(sub: Sub[argparse.ArgumentParser], common: argparse.ArgumentParser, name: str) -> None:
    """`regless plan` and its arguments."""
    pl = sub.add_parser(name, parents=[common], help=HELP[name], epilog="example: regless plan --output json")
    pl.add_argument("artifacts", nargs="*", metavar="ARTIFACT")
    pl.add_argument("--no-cache", action="store_true", help="plan as if every hit were ignored")
    pl.add_argument("--jobs", type=_jobs, default=1, metavar="N",
                    help="split the artifacts to build into at most N shares for CI jobs (default 1)")
    pl.add_argument("--matrix", choices=("github", "gitlab"), help="the shares as a CI matrix: GitHub Actions' "
                    "strategy.matrix or GitLab's parallel:matrix (in the JSON; alone on stdout with text output)")
    pl.add_argument("--save", type=Path, metavar="FILE", help="also write the JSON plan here, for "
                    "regless build --share K/N --plan FILE")


def _explain_parser(sub: Sub[argparse.ArgumentParser], common: argparse.ArgumentParser, name: str) -> None:
    """`regless explain` and its arguments."""
    ex = sub.add_parser(name, parents=[common], help=HELP[name], epilog="example: regless explain app")
    ex.add_argument("artifact", metavar="ARTIFACT")
    ex.add_argument("--against", metavar="REF", help="compare with the inputs record of this image: a tag or a "
                    "digest of the artifact's image, or a full reference (default: the last build this cache "
                    "knows, else the record of the first of the artifact's tags that has one)")


def _inputs_parser(sub: Sub[argparse.ArgumentParser], common: argparse.ArgumentParser, name: str) -> None:
    """`regless hash` or `regless deps` and its arguments."""
    s = sub.add_parser(name, parents=[common], help=HELP[name], epilog=f"example: regless {name} app")
    s.add_argument("artifact", metavar="ARTIFACT")
    if name == "deps":
        s.add_argument("--json", action="store_true", help="the same as --output json")
        s.add_argument("--offline", action="store_true", help="ask no registry: base image digests are "
                       "listed as unresolved (as when the registry cannot be reached)")


CACHE_EPILOG = """\
examples:
  regless cache ls --output json
  regless cache prune --older-than 30d --keep 5
  regless cache verify --fix
  regless cache add registry.example.com/team/app:0123456789abcdef0123456789abcdef
  regless cache export index.json      (on one runner)
  regless cache import index.json      (on another)
"""


def _cache_parser(sub: Sub[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """`regless cache`, its actions and their arguments."""
    c = sub.add_parser("cache", help=HELP["cache"], epilog=CACHE_EPILOG,
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


# command -> (module, function): a command's module is imported when it runs (see above)
COMMANDS: dict[str, tuple[str, str]] = {
    "build": ("buildcli", "cmd_build"), "plan": ("plancli", "cmd_plan"), "explain": ("plancli", "cmd_explain"),
    "hash": ("inputscli", "cmd_inputs"), "deps": ("inputscli", "cmd_inputs"), "cache": ("cachecli", "cmd_cache"),
    "server": ("warmcli", "cmd_server"),
}


def _command(name: str) -> Callable[[argparse.Namespace, Console], int]:
    """The function of command `name`, its module imported now."""
    import importlib

    module, function = COMMANDS[name]
    run: Callable[[argparse.Namespace, Console], int] = getattr(importlib.import_module(f".{module}", __package__),
                                                                  function)
    return run


def _on_signal(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line; the exit code: 0 done, 1 an artifact failed, 2 bad input, 3 registry.

    The cyclic garbage collector is off while the command starts: imports, the config and the hashing
    make many objects that live to the end (modules, the listing, the memo), which its collections
    walked (most of a one-file build's collections come before the build starts) to find next to no
    garbage. A build turns it back on once every artifact is hashed (buildcli); it is as it was once main
    returns."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _main(argv)
    finally:
        if collecting:
            gc.enable()


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(_command_of(argv))
    args = parser.parse_args(argv)
    if args.command == "version":
        from .hashing.choose import describe as engine

        try:
            print(f"regless {__version__}\nhashing: {engine()}", flush=True)
        except BrokenPipeError:  # `regless version | head -1`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    import signal

    from . import runtime
    from .console import Console
    from .events import Event

    environ = dict(os.environ)  # as given: what a replay's key takes in (replay.py), before the run sets any
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:  # started with that stream closed (`regless build >&-`): to nowhere
            setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115 - the process's stream, to its end
    signal.signal(signal.SIGTERM, _on_signal)
    if signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:  # the terminal closed (not under nohup): as SIGTERM
        signal.signal(signal.SIGHUP, _on_signal)
    r = Console(sys.stdout, sys.stderr, quiet=args.quiet, verbose=args.verbose,
                json_output=getattr(args, 'output', 'text') == 'json')
    if rt := runtime.ensure():  # no login session: the tools get a runtime folder of the user's own
        os.environ["XDG_RUNTIME_DIR"] = str(rt.path)
        r(Event("note", None, f"{rt.reason}; buildah, skopeo and crane get {rt.path} (0700) as their runtime folder"))
    try:
        code = None
        if args.command == "build":
            from . import replay
            from .cachedir import default_cache_dir

            code = replay.attempt(args, argv, environ, r, default_cache_dir)
        if code is None:
            code = _command(args.command)(args, r)
        # the process ends next: the interpreter's last collection need not walk what the run made (a
        # restart's listing, memo and hashes); they are freed with the process all the same
        gc.freeze()
        return code
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
        from . import proc

        proc.terminate_all()
        signum = exc.args[0] if exc.args else signal.SIGINT
        print("regless: cancelled; builders stopped", file=sys.stderr)
        return 128 + int(signum)
    except BrokenPipeError:
        # the reader went away (`regless deps app | head`): stop quietly, as other Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def entry() -> None:
    """Run the command line of this process, then end it (`end`)."""
    end(main())


def end(code: int) -> None:
    """The end of the process without the interpreter's teardown.

    Once a command has returned, all that is left is Python's own finalization: every module's dict
    cleared, the last collection, each object freed one by one, all of it released with the process
    anyway. What must happen at an end still happens first: the standard streams are flushed, and the
    exit handlers run (atexit: the temporary TLS folders of registry/tls.py). Where that cannot be
    done safely (a stream that does not flush, a thread still running), the interpreter ends as usual."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed or broken stream: Python's own end reports it as it always did
        sys.exit(code)
    import threading

    if any(t is not threading.main_thread() and not t.daemon for t in threading.enumerate()):
        sys.exit(code)  # the interpreter waits for it, as before
    import atexit

    atexit._run_exitfuncs()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()

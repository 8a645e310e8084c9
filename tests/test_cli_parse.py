"""cli._parser builds only the named command's arguments (cli._command_of): every command line parses, fails
and helps as with the parser that has every command's arguments."""

from __future__ import annotations

import contextlib
import io

import pytest

from reglessbuild import cli

LINES = (
    ["build", "-q", "--output", "json", "--default-repo", "r.example/x", "app", "web"],
    ["build", "--share", "1/2", "--plan", "p.json", "--no-records", "--keep-images", "-f", "regless.yaml"],
    ["build", "--no-such-flag"], ["build", "--output", "xml"], ["build", "--help"], ["build", "--no-c"],
    ["plan", "--jobs", "3", "--matrix", "github"], ["plan", "--jobs", "0"], ["explain", "app", "--against", "v1"],
    ["explain"], ["hash", "app"], ["deps", "app", "--json", "--offline"], ["deps", "--help"], ["version"],
    ["cache", "ls", "--json"], ["cache", "prune", "--older-than", "3d", "--keep", "2"], ["cache"], ["cache", "--help"],
    ["biuld"], [], ["--help"], ["-h", "build"], ["--version"], ["--", "build"], ["build", "plan"], ["plan", "--help"],
)


def _parse(parser_of: str | None, argv: list[str]) -> tuple[object, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            result: object = vars(cli._parser(parser_of).parse_args(argv))
        except SystemExit as exc:
            result = ("exit", exc.code)
    return result, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("argv", LINES, ids=" ".join)
def test_a_command_line_parses_as_with_every_command_built(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")  # the same help layout for both
    full = _parse(None, argv)
    assert _parse(cli._command_of(argv), argv) == full
    assert full[0] != {}  # something was parsed or said


def test_only_the_named_command_gets_its_arguments() -> None:
    subs = next(a for a in cli._parser("build")._actions if a.dest == "command").choices
    assert subs is not None and set(subs) == {"build", "plan", "explain", "hash", "deps", "version", "cache",
                                             "server"}
    assert len(subs["build"]._actions) > 10 and len(subs["plan"]._actions) == 1  # plan: its -h only
    assert cli._command_of(["build", "-q"]) == "build" and cli._command_of(["-q", "build"]) is None
    assert cli._command_of(["nonsense"]) is None and cli._command_of([]) is None

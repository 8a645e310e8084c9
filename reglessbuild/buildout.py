"""What `regless build` prints and writes once its work is done: one rendering for a run and its replay.

A run (buildcli.py) and a replay of one (replay.py) end the same way: the live area cleared, one line
per artifact (text), the summary or the JSON document on stdout, and Skaffold's build output in
--file-output. Only this module says how.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from . import documents, report
from .console import Console
from .errors import InputError


def render(rep: report.Report, args: argparse.Namespace, r: Console, order: Sequence[str]) -> int:
    """Print `rep` as args.output asks, write --file-output (artifacts in `order`, the config's); the
    run's exit code."""
    r.close()
    if args.output == "text":
        r.results(rep.results)
    r.line(documents.document("build", documents.build(rep), r.warnings) if args.output == "json"
           else report.summary(rep))
    if args.file_output:
        try:
            args.file_output.write_text(report.skaffold_builds(rep, list(order)) + "\n", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--file-output {args.file_output}: {exc.strerror}") from exc
    return rep.exit_code

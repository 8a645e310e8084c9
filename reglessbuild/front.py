"""The `regless` console script: the command line goes to this install's warm server where one runs,
else it runs in this process (and a server is started for the next one).

Importing this module loads nothing of regless's but the package's `__init__` and, for the commands the
server runs, `warm` and its client: what the interpreter has loaded at start anyway."""

from __future__ import annotations

import os
import sys

from . import IMPORTED

__all__ = ["ENV", "SERVED", "entry", "wanted"]

ENV = "REGLESS_SERVER"
# the commands that import the most and run the most often; `version` and `--help` start faster alone
SERVED = frozenset({"build", "plan", "explain", "hash", "deps", "cache"})
_OFF = ("0", "off", "false", "no")


def wanted(argv: list[str], environ: os._Environ[str] | dict[str, str]) -> bool:
    """Whether this command line goes to a warm server (and starts one where none runs): on unless
    REGLESS_SERVER says off, or CI is set and REGLESS_SERVER does not say on."""
    if not argv or argv[0] not in SERVED:
        return False
    setting = environ.get(ENV, "").strip().lower()
    if setting:
        return setting not in _OFF
    return environ.get("CI", "").strip().lower() in ("", *_OFF)


def entry() -> None:
    """Run this process's command line through the warm server or here, then end the process."""
    argv = sys.argv[1:]
    served = wanted(argv, os.environ)
    if served:
        from .warm import client

        code = client.run(argv, IMPORTED)
        if code is not None:
            os._exit(code)
    from . import cli

    code = cli.main(argv)
    if served:
        from .warm import client

        client.start()
    cli.end(code)

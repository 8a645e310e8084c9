"""The `regless` console script: the command line goes to this install's warm server where one runs,
else it runs in this process (and a server is started for the next one).

Importing this module loads nothing of regless's but the package's `__init__` and `warm`'s, which
import nothing; `version` and `--help` then load `cli` alone, and the commands the server runs its
client (socket) first."""

from __future__ import annotations

import os
import sys

from . import IMPORTED
from .warm import wanted

__all__ = ["entry"]


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

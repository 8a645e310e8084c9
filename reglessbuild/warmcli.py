"""`regless server [status|stop]`: the warm server of this install, as its user sees it (warm/)."""

from __future__ import annotations

import argparse
import os
import time

from .console import Console
from .warm import ENV, client, in_ci, wanted, wire

EXIT_OK = 0


def cmd_server(args: argparse.Namespace, r: Console) -> int:
    """Say whether this install's warm server runs and what it did (or why none can); or ask it to end."""
    marker = in_ci(os.environ)
    setting = "on" if wanted(["build"], os.environ) else (
        f"off ({ENV}={os.environ[ENV]})" if os.environ.get(ENV) else f"off ({marker} is set: a CI job)")
    why = wire.refusal(wire.place())
    if why:
        print(f"no warm server can run for this install: {why}; commands run in their own process")
        return EXIT_OK
    state = client.ask(args.action)
    if state is None:
        print(f"no warm server runs for this install; here it is {setting}")
        return EXIT_OK
    if args.action == "stop":
        print(f"warm server {state['stopping']} stops: it takes no more command lines and ends once its "
              "running ones have")
        return EXIT_OK
    up = time.time() - state["started"]
    print(f"warm server {state['pid']}: up {up:.0f} s, {state['served']} command lines served, "
          f"{state['running']} running; ends after {state['idle']:.0f} s without one (as it was started)\n"
          f"  install: {state['package']} ({state['exe']})\n  here it is {setting}")
    return EXIT_OK

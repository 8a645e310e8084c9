"""The warm server: a process of the user's that has imported regless once and forks a child to run
each command line, so that a command does not pay the interpreter's imports again.

A one-file build's own share was mostly the interpreter's start and regless's imports before buildah
could start (docs/restart.md, "Twelfth round"). The client (`front.entry`, the console script) hands the
server its command line, working folder, environment, umask and standard streams; the child runs
`cli.main` with them as the console script would have, and its exit status goes back to the client.
Nothing of a run is kept between runs: the child is a copy of a process that has only imported.

There is one server per user and install (interpreter and package folder). It ends after `idle`
seconds without a request, and steps aside as soon as a file of the code it imported has changed (the
client then runs the command itself and starts a new one). `REGLESS_SERVER=0` turns it off; it is off
by default in a CI job (`CI` and the like set), as a job's first run is usually its only one.

This module says when the server is wanted; it imports nothing, as the console script reads it for
every command line. `wire` is what the client and the server share.
"""

from __future__ import annotations

import os

__all__ = ["CI_MARKERS", "ENV", "IDLE_ENV", "IDLE_SECONDS", "SERVED", "in_ci", "wanted"]

ENV = "REGLESS_SERVER"
IDLE_ENV = "REGLESS_SERVER_IDLE"
IDLE_SECONDS = 900.0
# the commands that import the most and run the most often; `version` and `--help` start faster alone
SERVED = frozenset({"build", "plan", "explain", "hash", "deps", "cache"})
_OFF = ("0", "off", "false", "no")


# what CI services set in a job's environment: CI (GitHub Actions, GitLab, CircleCI, Buildkite, Travis...),
# and those of services that do not set it (Jenkins, Azure Pipelines, TeamCity)
CI_MARKERS = ("CI", "JENKINS_URL", "TF_BUILD", "TEAMCITY_VERSION")


def in_ci(environ: os._Environ[str] | dict[str, str]) -> str | None:
    """The variable that says this runs in a CI job, or None."""
    return next((k for k in CI_MARKERS if environ.get(k, "").strip().lower() not in ("", *_OFF)), None)


def wanted(argv: list[str], environ: os._Environ[str] | dict[str, str]) -> bool:
    """Whether this command line goes to a warm server (and starts one where none runs): on unless
    REGLESS_SERVER says off, or a CI job's variable is set and REGLESS_SERVER does not say on."""
    if not argv or argv[0] not in SERVED:
        return False
    setting = environ.get(ENV, "").strip().lower()
    if setting:
        return setting not in _OFF
    return in_ci(environ) is None

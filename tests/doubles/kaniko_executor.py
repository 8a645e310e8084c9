#!/usr/bin/env python3
"""TEST DOUBLE of kaniko's executor (kaniko cannot be installed here).

It accepts the executor's documented flags in its `--flag=value` form, refuses any
other flag the way the executor's flag parser does (exit 1, "unknown flag"), checks
what regless must always pass, logs its argv as JSON to $KANIKO_DOUBLE_LOG, and then
produces a real image: `buildah build` of the context, `buildah push` to the
destination, and the pushed digest written to --digest-file, as kaniko does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

VALUED = {"context", "dockerfile", "destination", "digest-file", "build-arg", "target", "custom-platform",
          "cache-repo", "push-retry", "cache", "insecure-registry", "skip-tls-verify-registry"}
BOOLEAN = {"insecure", "skip-tls-verify", "insecure-pull", "skip-tls-verify-pull", "cache", "reproducible"}
REPEATED = {"build-arg", "destination", "insecure-registry", "skip-tls-verify-registry"}


def fail(msg: str) -> None:
    print(f"Error: {msg}", file=sys.stderr)
    sys.exit(1)


def parse(argv: list[str]) -> dict[str, list[str]]:
    opts: dict[str, list[str]] = {}
    for arg in argv:
        if not arg.startswith("--"):
            fail(f"unexpected argument {arg!r}")
        name, eq, value = arg[2:].partition("=")
        if name not in VALUED | BOOLEAN:
            fail(f"unknown flag: --{name}")
        if not eq and name not in BOOLEAN:
            fail(f"flag needs an argument: --{name}")
        if name in opts and name not in REPEATED:
            fail(f"flag given twice: --{name}")
        opts.setdefault(name, []).append(value if eq else "true")
    return opts


def main() -> None:
    opts = parse(sys.argv[1:])
    if log := os.environ.get("KANIKO_DOUBLE_LOG"):
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps(sys.argv[1:]) + "\n")
    for required in ("context", "dockerfile", "destination", "digest-file"):
        if required not in opts:
            fail(f"regless must pass --{required}")
    context = opts["context"][0]
    if not context.startswith("dir://"):
        fail(f"--context {context!r}: the double only serves dir:// contexts")
    context = context[len("dir://"):]
    destination = opts["destination"][0]
    insecure = "insecure" in opts or "skip-tls-verify" in opts
    insecure_pull = "insecure-pull" in opts or "skip-tls-verify-pull" in opts
    storage = ["--storage-driver", "vfs"]
    build = ["buildah", *storage, "build", "--isolation", "chroot", "-f", opts["dockerfile"][0]]
    if "reproducible" in opts:  # kaniko strips timestamps: the double's buildah sets them to the epoch
        build += ["--timestamp", "0"]
    for arg in opts.get("build-arg", []):
        build += ["--build-arg", arg]
    if "target" in opts:
        build += ["--target", opts["target"][0]]
    if "custom-platform" in opts:
        build += ["--platform", opts["custom-platform"][0]]
    if insecure_pull:
        build.append("--tls-verify=false")
    build += ["-t", destination, context]
    print(f"INFO[0000] (double) building {destination}", flush=True)
    if subprocess.run(build).returncode != 0:
        fail("error building image")
    with tempfile.TemporaryDirectory() as tmp:
        digestfile = os.path.join(tmp, "d")
        push = ["buildah", *storage, "push", "--digestfile", digestfile,
                *(["--tls-verify=false"] if insecure else []), destination, f"docker://{destination}"]
        if subprocess.run(push).returncode != 0:
            fail("error pushing image")
        with open(digestfile) as f, open(opts["digest-file"][0], "w") as out:
            out.write(f.read().strip())
    print(f"INFO[0001] (double) pushed {destination}", flush=True)


if __name__ == "__main__":
    main()

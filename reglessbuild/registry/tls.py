"""The CA of `registry.caFile` in the shapes the tools take: a cert dir (skopeo, buildah) or SSL_CERT_DIR (crane)."""

from __future__ import annotations

import atexit
import os
import shutil
from functools import cache
from pathlib import Path

SYSTEM_CERT_DIRS = ("/etc/ssl/certs", "/etc/pki/tls/certs")


@cache
def cert_dir(ca_file: Path) -> str:
    """A private folder holding the CA as ca.crt, as containers/image's --cert-dir wants; removed at exit."""
    import tempfile  # only with a CA file: a restart against a plain registry need not import it

    folder = tempfile.mkdtemp(prefix="regless-certs-")
    shutil.copyfile(ca_file, os.path.join(folder, "ca.crt"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def go_env(ca_file: Path | None) -> dict[str, str] | None:
    """Environment for a Go tool (crane): the CA added to the system's roots through SSL_CERT_DIR."""
    env: dict[str, str] = {}
    if ca_file is not None:
        dirs = [cert_dir(ca_file), *(d for d in SYSTEM_CERT_DIRS if os.path.isdir(d))]
        env["SSL_CERT_DIR"] = ":".join(dirs)
    auth = os.environ.get("REGISTRY_AUTH_FILE")
    if auth and not os.environ.get("DOCKER_CONFIG"):
        env["DOCKER_CONFIG"] = _docker_config_for(auth)  # crane reads only docker's config.json
    return {**os.environ, **env} if env else None


def short_lived(env: dict[str, str] | None) -> dict[str, str]:
    """Environment for a Go tool that makes one or two requests and exits (a digest check): one
    scheduler thread and no garbage collector, unless the user set them. A check starts a whole Go
    process, and many of them at once are CPU-bound on a small runner: these settings make them
    cheaper there (docs/performance.md, "Digest checks with GOMAXPROCS=1 GOGC=off"; `bin/bench --checks`). Not for
    copies: they move layers, and a collector-less copy of a large layer would hold all of it."""
    base = env if env is not None else os.environ
    return {"GOMAXPROCS": "1", "GOGC": "off", **base}


@cache
def _docker_config_for(auth_file: str) -> str:
    """A private folder whose config.json is the auth file (crane reads only docker's); removed at exit."""
    import tempfile  # only with REGISTRY_AUTH_FILE set

    folder = tempfile.mkdtemp(prefix="regless-docker-config-")
    os.symlink(os.path.abspath(auth_file), os.path.join(folder, "config.json"))
    atexit.register(shutil.rmtree, folder, True)
    return folder

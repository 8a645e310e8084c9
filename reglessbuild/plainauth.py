"""What the direct client (manifesthttp.py) may do for a registry by itself: the setups it leaves to the tool,
and plain basic credentials from the config files crane and skopeo read.

The tools read more than this: credential helpers and stores, identity tokens, proxies, per-registry
certificates (certs.d) and containers' registries.conf (mirrors, rewritten locations, insecure
entries). Where any of those could apply to a registry, the direct client stays out of the way.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROXY_VARS = ("https_proxy", "http_proxy", "all_proxy")
LOOPBACK = ("localhost", "127.0.0.1", "::1", "[::1]")


def _home(env: Mapping[str, str]) -> Path:
    return Path(env.get("HOME") or os.path.expanduser("~"))


def config_files(env: Mapping[str, str]) -> list[Path]:
    """The credential files crane or skopeo may read (REGISTRY_AUTH_FILE, docker's and containers')."""
    home = _home(env)
    files = [Path(env["REGISTRY_AUTH_FILE"])] if env.get("REGISTRY_AUTH_FILE") else []
    if env.get("DOCKER_CONFIG"):
        files.append(Path(env["DOCKER_CONFIG"]) / "config.json")
    if env.get("XDG_RUNTIME_DIR"):
        files.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    files += [home / ".config" / "containers" / "auth.json", home / ".docker" / "config.json"]
    return files


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return None  # unreadable or broken: the tool says what is wrong with it
    return data if isinstance(data, dict) else None


def _keys(registry: str) -> tuple[str, ...]:
    return (registry, f"https://{registry}", f"http://{registry}", f"https://{registry}/v2/", f"http://{registry}/v2/")


def basic(registry: str, env: Mapping[str, str]) -> str | None:
    """The `Authorization: Basic ...` value of the credentials for `registry`, where every config file
    that names it gives the same plain user and password; None where there are none, where they
    differ, or where a helper, a store or a token would be used."""
    found: set[str] = set()
    for path in config_files(env):
        data = _read(path)
        if data is None:
            return None
        helpers = data.get("credHelpers") or {}
        if any(k in helpers for k in _keys(registry)):
            return None
        auths = data.get("auths") or {}
        if not isinstance(auths, dict):
            return None
        for key in _keys(registry):
            entry = auths.get(key)
            if entry is None:
                continue
            value = _plain(entry)
            if value is None:
                return None
            found.add(value)
        if data.get("credsStore") and not found:
            return None  # a store may hold credentials for it
    return f"Basic {found.pop()}" if len(found) == 1 else None


def _plain(entry: Any) -> str | None:
    """base64 of user:password from an `auths` entry, None for any other kind of entry."""
    if not isinstance(entry, dict) or entry.get("identitytoken") or entry.get("registrytoken"):
        return None
    if isinstance(entry.get("auth"), str) and entry["auth"]:
        try:
            text = base64.b64decode(entry["auth"], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return entry["auth"] if ":" in text else None
    user, password = entry.get("username"), entry.get("password")
    if isinstance(user, str) and isinstance(password, str) and user:
        return base64.b64encode(f"{user}:{password}".encode()).decode()
    return None


def unhandled_setup(registry: str, env: Mapping[str, str], *, tool: str) -> str:
    """Why the tool, not the direct client, must answer for `registry` ("" when nothing stands in the way)."""
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    if host in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return "Docker Hub (token authentication)"
    if host not in LOOPBACK and any(env.get(v) or env.get(v.upper()) for v in PROXY_VARS):
        return "a proxy is set in the environment"
    home = _home(env)
    own = home / ".config" / "containers"
    for base in (Path("/etc/docker/certs.d"), Path("/etc/containers/certs.d"), own / "certs.d"):
        if (base / registry).exists() or (base / host).exists():
            return f"{base / registry} holds certificates for it"
    if tool == "skopeo":
        confs = [Path("/etc/containers/registries.conf"), own / "registries.conf"]
        for folder in (Path("/etc/containers/registries.conf.d"), own / "registries.conf.d"):
            confs += sorted(folder.glob("*.conf")) if folder.is_dir() else []
        if env.get("CONTAINERS_REGISTRIES_CONF"):
            confs.append(Path(env["CONTAINERS_REGISTRIES_CONF"]))
        for conf in confs:
            try:
                if host in conf.read_text(errors="replace"):
                    return f"{conf} names it"
            except OSError:
                continue
    return ""

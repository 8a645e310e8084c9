"""What the commands share: where the index lives, opening it, the registry with its retries, output files.

Every event they cause goes to the user interface's sink (the Console); nothing here prints.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from . import registry
from .errors import InputError
from .events import Event, Sink
from .index import Index
from .registry import direct
from .registry.retry import Policy
from .settings import RegistrySettings


def default_cache_dir() -> Path:
    if d := os.environ.get("REGLESS_CACHE_DIR"):
        return Path(d)
    if d := os.environ.get("XDG_CACHE_HOME"):
        return Path(d) / "regless"
    return Path.home() / ".cache" / "regless"


def open_index(cache_dir: Path | None, emit: Sink) -> Index:
    """The index of --cache-dir (or the default), saying so when a damaged one had to be set aside."""
    index = Index.open(cache_dir or default_cache_dir())
    for m in index.moved:
        emit(Event("warning", None, f"the index could not be read ({m.reason}); moved it to {m.path} and started anew"))
    return index


def reliable(settings: RegistrySettings, insecure: tuple[str, ...], emit: Sink) -> tuple[registry.Reliable, str]:
    """The registry tool the settings choose (its checks made directly where plain: registry/direct.py),
    with their retry deadline, telling `emit` of every pause between attempts (waiting is never silent);
    and where the choice came from."""
    choice = registry.choose(settings.tool, insecure=insecure, ca_file=settings.ca_file,
                             attempt_timeout=min(30.0, settings.timeout))
    inner: registry.Registry = choice.registry
    if direct.enabled():  # checks and manifest reads over HTTP where plain, the tool for the rest
        inner = direct.Direct(inner, insecure=insecure, ca_file=settings.ca_file, timeout=min(30.0, settings.timeout))
    reg = registry.Reliable(inner, Policy(deadline=settings.timeout))
    reg.on_retry = lambda n: emit(Event("retry", None, "", dataclasses.asdict(n)))
    return reg, choice.source


def writable(path: Path | None, flag: str) -> None:
    """Refuse an output file that cannot be written before any work is done, not after the builds."""
    if path is None:
        return
    if not path.parent.is_dir():
        what = "is not a folder" if path.parent.exists() else "does not exist"
        raise InputError(f"{flag} {path}: {path.parent} {what}", hint="give a file in an existing folder")
    if path.is_dir():
        raise InputError(f"{flag} {path} is a folder", hint="give the path of a file to write")

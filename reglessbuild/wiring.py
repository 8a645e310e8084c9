"""What the commands share: where the index lives, opening it, the registry with its retries, output files.

Every event they cause goes to the user interface's sink (the Console); nothing here prints.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from . import config, registry, witness
from .cachedir import default_cache_dir
from .errors import InputError
from .events import Event, Sink
from .index import Index
from .registry import direct
from .retrying import Policy
from .settings import RegistrySettings


def load_project(args: argparse.Namespace, emit: Sink) -> config.Project:
    """The project of -f (or the one found here), with the command line's overrides: --insecure-registry,
    --platform, --no-records. Its warnings go to `emit`; args.config_kind says whose words errors use."""
    path = args.file if args.file else config.find_config(Path.cwd())
    project = config.load(path, default_repo=args.default_repo, profiles=tuple(args.profile),
                          skip_unsupported=args.skip_unsupported)
    if args.insecure_registry:
        project = dataclasses.replace(project, registry=dataclasses.replace(
            project.registry, insecure=(*project.registry.insecure, *args.insecure_registry)))
    if args.platform:
        from . import multiplatform  # only with --platform: a restart need not import it (nor manifests)

        project = multiplatform.with_platforms(project, args.platform)
    if getattr(args, "no_records", False):
        project = dataclasses.replace(project, registry=dataclasses.replace(project.registry, records=False))
    for w in project.warnings:
        emit(Event("warning", None, w))
    args.config_kind = project.kind
    return project


def connect(args: argparse.Namespace, emit: Sink, project: config.Project) -> tuple[Index, registry.Reliable, str]:
    """The index of --cache-dir, the project's registry tool with its retries, and why that tool."""
    reg, source = reliable(project.registry, project.registry.insecure, emit)
    return open_index(args.cache_dir, emit), reg, source


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
    if (w := witness.current()) is not None:
        reg.on_answer = w.answer
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

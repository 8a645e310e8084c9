"""`regless cache ...`: the index's entries listed, shown, removed, pruned, verified, added, exported, imported.

Each action asks only for what it uses: the registry settings (of regless.yaml's `registry` section,
or skaffold.yaml's) for verify and add, nothing of the config for the others, so that a build arg's
unset environment variable does not stop `cache verify`. ls, show, verify and export write one JSON
document with `--output json` (documents.py).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import yaml

from . import cache, config, documents, settings, storage
from .console import Console
from .errors import ConfigError, InputError
from .events import Event
from .index import Index
from .registry import Reliable
from .wiring import open_index, reliable, writable
from .yamlread import Reader, read_docs

EXIT_OK, EXIT_FAILED = 0, 1


def cmd_cache(args: argparse.Namespace, r: Console) -> int:
    """`regless cache ls|show|rm|prune|...`: the index's subcommands, with the index opened
    once and closed whatever happens; returns the exit code."""
    if getattr(args, "json", False):
        args.output = "json"
    index = open_index(args.cache_dir, r)
    try:
        return _action(args, r, index)
    finally:
        index.close()


def registry_settings(path: Path | None, *, default_repo: str | None = None,
                      profiles: tuple[str, ...] = ()) -> settings.RegistrySettings:
    """The registry settings of the config at `path` (none: the defaults), reading nothing else of a
    regless.yaml; a skaffold.yaml is read whole (its insecure registries may come from profiles)."""
    if path is None:
        return settings.RegistrySettings()
    path = path.resolve()
    if not path.is_file():
        raise ConfigError("config file not found", path=str(path), hint="check the path given to -f")
    docs = read_docs(path)
    top = docs[0] if len(docs) == 1 else None
    if path.name in config.SKAFFOLD_NAMES or not isinstance(top, yaml.MappingNode) or any(
            k.value == "apiVersion" and str(v.value).startswith("skaffold/") for k, v in top.value):
        return config.load(path, default_repo=default_repo, profiles=profiles, skip_unsupported=True).registry
    for k, v in top.value:
        if k.value == "registry":
            return settings.registry(Reader(path), v)
    return settings.RegistrySettings()


def _registry(args: argparse.Namespace, r: Console) -> tuple[Reliable, int]:
    names = config.CONFIG_NAMES + config.SKAFFOLD_NAMES
    found = args.file or next((Path.cwd() / n for n in names if (Path.cwd() / n).is_file()), None)
    s = registry_settings(found, default_repo=args.default_repo, profiles=tuple(args.profile))
    reg, _ = reliable(s, (*s.insecure, *args.insecure_registry), r)
    return reg, s.concurrency


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _action(args: argparse.Namespace, r: Console, index: Index) -> int:
    act, out, now, as_json = args.cache_command, r.out, time.time(), args.output == "json"
    if act == "ls":
        rows = sorted(index.items(), key=lambda he: he[1].built_at, reverse=True)
        if as_json:
            print(documents.document("cache ls", {"entries": [documents.entry(h, e) for h, e in rows]},
                                     r.warnings), file=out)
        for h, e in rows if not as_json else ():
            print(f"{h}  {_age(now - e.built_at):>4}  {e.digest[:19]}  {', '.join(e.refs)}", file=out)
    elif act == "show":
        h, e = cache.find(index, args.hash)
        print(documents.document("cache show", {"entry": documents.entry(h, e)}, r.warnings) if as_json else
              json.dumps(documents.entry(h, e), indent=2), file=out)
    elif act == "rm":
        targets = [cache.find(index, x)[0] for x in args.hashes]
        for h in index.drop_many(targets):
            print(f"removed {h}", file=out)
    elif act == "prune":
        return _prune(args, r, index, now)
    elif act == "verify":
        return _verify(args, r, index, as_json)
    elif act == "add":
        reg, _ = _registry(args, r)
        h, e = cache.add(index, reg, args.reference)
        print(f"recorded {h} -> {e.digest} ({', '.join(e.refs)})", file=out)
    elif act == "export":
        entries = [documents.entry(h, e) for h, e in index.items()]
        text = documents.document("cache export", {"entries": entries}, r.warnings)
        if args.path == "-":
            print(text, file=out)
        else:
            writable(Path(args.path), "cache export")
            Path(args.path).write_text(text + "\n", encoding="utf-8")
        print(f"exported {len(entries)} entries", file=r.err)
    elif act == "import":
        written, conflicts = index.merge_many(cache.read_export(args.path))
        print(f"imported {written} entries" + (f"; kept {conflicts} local entries whose digest differs"
                                               if conflicts else ""), file=out)
    return EXIT_OK


def _prune(args: argparse.Namespace, r: Console, index: Index, now: float) -> int:
    if args.builder_storage:
        _empty_builder_storage(r)
        if args.older_than is None and args.keep is None:
            return EXIT_OK
    if args.older_than is None and args.keep is None:
        raise InputError("cache prune needs --older-than DURATION, --keep N, --builder-storage, or some of them")
    if args.keep is not None and args.keep < 0:
        raise InputError("--keep must be 0 or more")
    older = cache.parse_duration(args.older_than) if args.older_than else None
    drop = cache.prune_selection(index.items(), now=now, older_than=older, keep=args.keep)
    if not args.dry_run:
        index.drop_many(drop)
    print(f"{'would remove' if args.dry_run else 'removed'} {len(drop)} entries", file=r.out)
    return EXIT_OK


def _empty_builder_storage(r: Console) -> None:
    """Every image of regless's own buildah storage removed, for each driver it was used with, once no
    regless run uses it (storage.empty waits for the storage's lock: a build, an earlier run's removal)."""
    top = storage.folder()
    confs = sorted(top.glob("storage-*.conf")) if top.is_dir() else []

    def waiting() -> None:  # waiting is never silent
        r(Event("wait", None, f"waiting for the regless run using buildah's storage {top} to end (its builds, "
                "or the removal of its images)"))

    if os.environ.get("CONTAINERS_STORAGE_CONF") or not confs:
        storage.empty(storage.choose("vfs"), "vfs", waiting)  # refuses the user's storage; an empty one has nothing
    removed = 0
    for conf in confs:
        driver = conf.name.removeprefix("storage-").removesuffix(".conf")
        removed += storage.empty(storage.Storage(conf, own=True, graph=top / driver), driver, waiting)
    print(f"emptied regless's buildah storage {top}: {removed} images removed", file=r.out)


def _verify(args: argparse.Namespace, r: Console, index: Index, as_json: bool) -> int:
    reg, concurrency = _registry(args, r)
    rows = cache.verify(index, reg, concurrency)
    dead = [v.hash for v in rows if not v.ok]
    if args.fix and dead:
        index.drop_many(dead)
    if as_json:
        print(documents.document("cache verify", {
            "entries": [{**documents.entry(v.hash, v.result), "alive": v.ok, "live": list(v.live),
                         "dead": list(v.dead)} for v in rows],
            "alive": len(rows) - len(dead), "dead": len(dead), "dropped": bool(args.fix and dead)}, r.warnings),
            file=r.out)
    else:
        for v in rows:
            print(f"{'ok  ' if v.ok else 'dead'}  {v.hash}  {v.result.digest[:19]}  "
                  f"{', '.join(v.live) if v.ok else 'gone: ' + ', '.join(v.dead)}", file=r.out)
        print(f"{len(rows) - len(dead)} alive, {len(dead)} dead" + (" (dropped)" if args.fix and dead else ""),
              file=r.out)
    return EXIT_FAILED if dead and not args.fix else EXIT_OK

"""The configs of a Skaffold project: each document of skaffold.yaml and, through `requires`, other files.

Skaffold's multi-config (docs: "Config dependencies"): a document may `require` the
configs of another skaffold.yaml (`path`: a folder holding skaffold.yaml, or the file),
all of them or those named in `configs` (by `metadata.name`), with `activeProfiles`
turning on profiles there. Required configs come before the one requiring them; each
keeps its own folder for its relative paths; a config reached twice is loaded once.
Remote configs (`git`, `googleCloudStorage`, `googleCloudBuildRepoV2`) are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..yamlread import read_docs
from . import profiles as prof
from . import schema
from .data import Map, Places, Src, from_node

UNSUPPORTED = schema.UNSUPPORTED_TYPES
_REMOTE = ("git", "googleCloudStorage", "googleCloudBuildRepoV2")
SKAFFOLD_NAMES = ("skaffold.yaml", "skaffold.yml")


@dataclass
class Loaded:
    """One config after its profiles: the build section regless reads, and where its paths start."""

    root: Path
    places: Places
    build: Map
    name: str | None = None
    insecure: list[str] = field(default_factory=list)
    concurrency: int = 1


def where_artifact(node: Any) -> str:
    """`build.artifacts[i]` for an artifact node (its index in its list, found by identity)."""
    return getattr(node, "where", None) or "build.artifacts[?]"


class _Walk:
    def __init__(self, named: list[str], env: Mapping[str, str]) -> None:
        self.named, self.env = named, env
        self.out: list[Loaded] = []
        self.done: set[tuple[Path, int]] = set()
        self.stack: list[tuple[Path, int]] = []  # (file, document index) of the configs being loaded
        self.profile_names: set[str] = set()
        self.notes: list[str] = []

    def file(self, path: Path, docs: list[yaml.Node], only: list[str] | None, extra_profiles: list[str],
             from_src: Src | None = None) -> None:
        path = path.resolve()
        places = Places(path)
        found = set()
        for d, node in enumerate(docs):
            cfg = from_node(node, path)
            if not isinstance(cfg, Map):
                raise places.fail("a skaffold.yaml document must be a mapping", cfg)
            schema.check(cfg, schema.CONFIG, "", places)
            api = cfg.get("apiVersion")
            if api is None:
                raise places.fail("a skaffold.yaml document needs apiVersion", cfg,
                                  hint="e.g. apiVersion: skaffold/v4beta13")
            if not isinstance(api, str) or not api.startswith("skaffold/"):
                raise places.fail(f"apiVersion {api!r} is not a Skaffold config version", cfg, "apiVersion",
                                  hint="e.g. apiVersion: skaffold/v4beta13")
            if cfg.get("kind") not in (None, "Config"):
                raise places.fail(f"kind {cfg.get('kind')!r} is not Config", cfg, "kind")
            name = (cfg.get("metadata") or {}).get("name")
            if only is not None and name not in only:
                continue
            found.add(name)
            key = (path, d)
            if key in self.stack:
                chain = " -> ".join(f"{p.name}#{i + 1}" for p, i in [*self.stack, key])
                raise ConfigError(f"requires cycle: {chain} (file#document)", path=str(from_src.path if from_src
                                  else path), line=from_src.line if from_src else None,
                                  hint="a config cannot require itself, directly or through others")
            if key in self.done:
                continue
            self.stack.append(key)
            active_here = [str(p.get("name")) for p in prof.active(cfg.get("profiles") or [],
                                                                    [*self.named, *extra_profiles], self.env, places)]
            self.requires(cfg, path, places, active_here)
            self.profile_names.update(prof.names(cfg.get("profiles") or []))
            self.out.append(self.effective(cfg, path, places, extra_profiles))
            self.stack.pop()
            self.done.add(key)
        if only is not None and (missing := [n for n in only if n not in found]):
            raise ConfigError(f"no config named {', '.join(map(repr, missing))} here", path=str(path),
                              hint="configs are named by metadata.name")

    def requires(self, cfg: Map, path: Path, places: Places, active_here: list[str]) -> None:
        """Load the configs `cfg` requires (before it); `active_here` are its active profiles, which
        `activeProfiles[].activatedBy` asks about."""
        deps = cfg.get("requires") or []
        for j, dep in enumerate(deps):
            where = f"requires[{j}]"
            remote = [k for k in _REMOTE if dep.get(k) is not None]
            if remote:
                raise places.fail(f"{where}.{remote[0]}: regless reads configs from local files only", dep, remote[0],
                                  hint="check the repository out and require it by `path`")
            target = path.parent / str(dep.get("path") or ".")
            if target.is_dir():
                target = next((target / n for n in SKAFFOLD_NAMES if (target / n).is_file()), target / "skaffold.yaml")
            if not target.is_file():
                raise places.fail(f"{where}.path: {target} does not exist", dep, "path" if "path" in dep else None,
                                  hint="path is relative to this file's folder: a folder with skaffold.yaml, or a file")
            active = [str(p.get("name")) for p in dep.get("activeProfiles") or []
                      if not p.get("activatedBy") or set(map(str, p["activatedBy"])) & set(active_here)]
            only = [str(c) for c in dep["configs"]] if dep.get("configs") else None
            self.file(target, read_docs(target), only, active, Src(path, dep.src.line if dep.src else 0))

    def effective(self, cfg: Map, path: Path, places: Places, extra: list[str]) -> Loaded:
        for profile in prof.active(cfg.get("profiles") or [], [*self.named, *extra], self.env, places, self.notes):
            index = (cfg.get("profiles") or []).index(profile)
            cfg = prof.apply(cfg, profile, index, places)
        schema.check(cfg, schema.CONFIG, "", places)  # patches may have written anything
        build = cfg.get("build") or Map()
        for i, art in enumerate(build.get("artifacts") or []):
            if isinstance(art, Map):
                art.where = f"build.artifacts[{i}]"
        local = build.get("local") or {}
        if local.get("push") is False:
            raise places.fail("build.local.push: false asks for images kept in a local Docker daemon; regless "
                              "builds without one, pushing every image to its registry", local, "push",
                              hint="remove push: false (or set it to true) and give a registry with --default-repo")
        concurrency = local.get("concurrency")
        if concurrency is not None and (not isinstance(concurrency, int) or isinstance(concurrency, bool)
                                        or concurrency < 0):
            raise places.fail("build.local.concurrency must be 0 or a positive number", local, "concurrency")
        insecure = build.get("insecureRegistries") or []
        return Loaded(path.parent, places, build, (cfg.get("metadata") or {}).get("name"),
                      [str(x) for x in insecure], concurrency or 1)


def load_all(path: Path, docs: list[yaml.Node], named: list[str], env: Mapping[str, str],
             notes: list[str] | None = None) -> list[Loaded]:
    """Every config reachable from `path`, required ones first, with their active profiles applied; `notes`
    gets what the user should know (profiles that cannot auto-activate here)."""
    walk = _Walk(named, env)
    walk.file(path, docs, None, [])
    unknown = [n for n in named if not n.startswith("-") and n not in walk.profile_names]
    if unknown:
        raise ConfigError(f"no profile named {', '.join(map(repr, unknown))} in this project", path=str(path),
                          hint=f"profiles here: {', '.join(sorted(walk.profile_names)) or 'none'}")
    if notes is not None:
        notes += walk.notes
    return walk.out

"""regless.yaml -> Project (project.py's neutral structure); a skaffold.yaml goes to skaffold/.

Every error names the file, the line and the key. The Project's types are re-exported here, where
callers have always found them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from . import platforms, refs, skaffold
from .errors import ConfigError
from .project import Artifact, Project, Requirement, Skipped, check_requires
from .settings import BuildahSettings, BuilderSettings, KanikoSettings, RegistrySettings
from .settings import builder as _builder
from .settings import registry as _registry
from .yamlread import Reader as _Reader
from .yamlread import read_docs

__all__ = ["Artifact", "BuildahSettings", "BuilderSettings", "KanikoSettings", "Project", "RegistrySettings",
           "Requirement", "Skipped", "expand_env", "find_config", "load"]  # the types: project.py, settings.py

CONFIG_NAMES = ("regless.yaml", "regless.yml")
SKAFFOLD_NAMES = ("skaffold.yaml", "skaffold.yml")
API_VERSION = "regless/v1"


# ---------------------------------------------------------------- finding


def find_config(start: Path) -> Path:
    """regless.yaml in `start`, else skaffold.yaml (its build section is read)."""
    for name in CONFIG_NAMES + SKAFFOLD_NAMES:
        candidate = start / name
        if candidate.is_file():
            return candidate
    raise ConfigError(
        "no regless.yaml found",
        path=str(start),
        hint="run regless in the folder that holds regless.yaml (or skaffold.yaml), or pass -f FILE",
    )


_ENV_RE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*)|(?P<dollar>\$))")


def expand_env(text: str, env: dict[str, str] | os._Environ[str]) -> str:
    """Expand `$VAR` and `${VAR}` from the environment; `$$` is a literal `$`. Raises KeyError."""

    def sub(m: re.Match[str]) -> str:
        if m.group("dollar"):
            return "$"
        name = m.group("braced") or m.group("plain")
        return env[name]

    return _ENV_RE.sub(sub, text)


# ---------------------------------------------------------------- loading


def load(path: Path, *, default_repo: str | None = None, env: dict[str, str] | None = None,
         profiles: tuple[str, ...] = (), skip_unsupported: bool = False) -> Project:
    """Read regless.yaml, or a skaffold.yaml (`profiles` and `skip_unsupported` apply to those only)."""
    path = path.resolve()
    if not path.is_file():
        raise ConfigError("config file not found", path=str(path), hint="check the path given to -f")
    docs = read_docs(path)
    if path.name in SKAFFOLD_NAMES or _is_skaffold(docs):
        return skaffold.load(path, docs, default_repo=default_repo, env=os.environ if env is None else env,
                             profiles=profiles, skip_unsupported=skip_unsupported)
    if profiles:
        raise ConfigError("-p/--profile applies to skaffold.yaml; regless.yaml has no profiles", path=str(path))
    if len(docs) > 1:
        raise ConfigError("regless.yaml holds several YAML documents", path=str(path),
                          line=docs[1].start_mark.line + 1, hint="keep one document")
    root = docs[0] if docs else None
    r = _Reader(path)
    if root is None:
        raise ConfigError("the file is empty", path=str(path), hint="see README.md for an example regless.yaml")
    top = r.mapping(root, "the config", {"apiVersion": False, "defaultRepo": False, "registry": False,
                                          "builder": False, "artifacts": True})
    if "apiVersion" in top and (v := r.string(top["apiVersion"], "apiVersion")) != API_VERSION:
        raise r.fail(top["apiVersion"], f"apiVersion {v!r} is not supported", hint=f"use apiVersion: {API_VERSION}")
    repo = default_repo or (r.string(top["defaultRepo"], "defaultRepo") if "defaultRepo" in top else None)
    if repo:
        try:
            refs.parse(repo.rstrip("/"))
        except refs.RefError as exc:
            raise r.fail(top.get("defaultRepo"), f"defaultRepo: {exc}") from exc
    registry = _registry(r, top["registry"]) if "registry" in top else RegistrySettings()
    builder = _builder(r, top["builder"]) if "builder" in top else BuilderSettings()
    artifacts = _artifacts(r, top["artifacts"], path.parent, repo, os.environ if env is None else env)
    return Project(path=path, root=path.parent, artifacts=artifacts, registry=registry, builder=builder,
                   default_repo=repo)


def _is_skaffold(docs: list[yaml.Node]) -> bool:
    for d in docs:
        if isinstance(d, yaml.MappingNode):
            for k, v in d.value:
                if k.value == "apiVersion" and isinstance(v, yaml.ScalarNode) and v.value.startswith("skaffold/"):
                    return True
    return False


_ARTIFACT_KEYS = {"image": True, "context": False, "dockerfile": False, "target": False, "buildArgs": False,
                  "platform": False, "platforms": False, "requires": False, "tags": False}


def _artifacts(r: _Reader, node: yaml.Node, root: Path, repo: str | None, env: Any) -> tuple[Artifact, ...]:
    items = r.sequence(node, "artifacts")
    if not items:
        raise r.fail(node, "artifacts is empty", hint="list at least one artifact with an `image`")
    out: list[Artifact] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        where = f"artifacts[{i}]"
        m = r.mapping(item, where, _ARTIFACT_KEYS)
        name = r.string(m["image"], f"{where}.image")
        line = item.start_mark.line + 1
        try:
            ref = refs.parse(name, default_repo=repo)
        except refs.RefError as exc:
            raise r.fail(m["image"], f"{where}.image: {exc}") from exc
        if ref.tag or ref.digest:
            raise r.fail(m["image"], f"{where}.image {name!r} carries a tag or digest",
                         hint="name the repository only; regless tags each image with its workspace hash")
        key = str(ref)
        if key in seen:
            raise r.fail(m["image"], f"duplicate image {name!r} (also at line {seen[key]})")
        seen[key] = line
        context = (root / (r.string(m["context"], f"{where}.context") if "context" in m else ".")).resolve()
        if not context.is_dir():
            raise r.fail(m.get("context", item), f"{where}: context folder {context} does not exist",
                         hint="context is relative to the folder of the config file")
        dockerfile = context / (r.string(m["dockerfile"], f"{where}.dockerfile") if "dockerfile" in m
                                else "Dockerfile")
        if not dockerfile.is_file():
            raise r.fail(m.get("dockerfile", item), f"{where}: Dockerfile {dockerfile} does not exist",
                         hint="dockerfile is relative to the artifact's context")
        build_args: list[tuple[str, str]] = []
        if "buildArgs" in m:
            ba = m["buildArgs"]
            if not isinstance(ba, yaml.MappingNode):
                raise r.fail(ba, f"{where}.buildArgs must be a mapping of names to strings")
            for k_node, v_node in ba.value:
                if not isinstance(v_node, yaml.ScalarNode):
                    raise r.fail(v_node, f"{where}.buildArgs.{k_node.value} must be a string")
                value = v_node.value  # the text as written: YAML would read 1.10 as 1.1
                try:
                    build_args.append((k_node.value, expand_env(str(value), env)))
                except KeyError as exc:
                    raise r.fail(v_node, f"{where}.buildArgs.{k_node.value}: environment variable {exc.args[0]} "
                                 "is not set", hint="set it, or write $$ for a literal $") from exc
        requires: list[Requirement] = []
        if "requires" in m:
            for j, req in enumerate(r.sequence(m["requires"], f"{where}.requires")):
                rm = r.mapping(req, f"{where}.requires[{j}]", {"image": True, "alias": True})
                alias = r.string(rm["alias"], f"{where}.requires[{j}].alias")
                if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", alias):
                    raise r.fail(rm["alias"], f"{where}.requires[{j}].alias {alias!r} is not a valid build arg name")
                requires.append(Requirement(r.string(rm["image"], f"{where}.requires[{j}].image"), alias))
        tags = r.strings(m["tags"], f"{where}.tags") if "tags" in m else []
        for t_node, t in zip(m["tags"].value if "tags" in m else [], tags, strict=True):
            if not refs.TAG_RE.match(t):
                raise r.fail(t_node, f"{where}.tags: {t!r} is not a valid tag")
        out.append(Artifact(
            name=name, ref=ref, context=context, dockerfile=dockerfile,
            target=r.string(m["target"], f"{where}.target") if "target" in m else None,
            build_args=tuple(build_args),
            **_platforms(r, m, where),
            requires=tuple(requires), tags=tuple(tags), line=line,
        ))
    check_requires(out, lambda i, j, message, hint: r.fail(
        items[i], message if j is None else f"artifacts[{i}].requires[{j}]: {message}", hint=hint))
    return tuple(out)


def _platforms(r: _Reader, m: dict[str, yaml.Node], where: str) -> dict[str, Any]:
    """`platform: P`, or `platforms: [P, …]` (one build per platform, one image index); one entry is `platform`."""
    if "platform" in m and "platforms" in m:
        raise r.fail(m["platforms"], f"{where} has both platform and platforms", hint="keep one of them")
    if "platform" in m:
        text = r.string(m["platform"], f"{where}.platform")
        try:
            platforms.parse(text)
        except platforms.PlatformError as exc:
            raise r.fail(m["platform"], f"{where}.platform: {exc.message}", hint=exc.hint) from exc
        return {"platform": text}
    if "platforms" not in m:
        return {}
    texts = r.strings(m["platforms"], f"{where}.platforms")
    if not texts:
        raise r.fail(m["platforms"], f"{where}.platforms is empty", hint="list one platform or more, or leave it out")
    seen: list[str] = []
    for node, text in zip(m["platforms"].value, texts, strict=True):
        try:
            name = str(platforms.parse(text))
        except platforms.PlatformError as exc:
            raise r.fail(node, f"{where}.platforms: {exc.message}", hint=exc.hint) from exc
        if name in seen:
            raise r.fail(node, f"{where}.platforms lists {name} twice")
        seen.append(name)
    return {"platform": texts[0]} if len(texts) == 1 else {"platforms": tuple(seen)}

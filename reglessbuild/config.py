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

from . import artifactspec as spec
from . import refs
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
        from . import skaffold  # only a skaffold.yaml: a regless.yaml build does not load the package

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
    """Each artifact's keys and types checked here, its values by artifactspec (as for a skaffold.yaml)."""
    items = r.sequence(node, "artifacts")
    if not items:
        raise r.fail(node, "artifacts is empty", hint="list at least one artifact with an `image`")
    out: list[Artifact] = []
    unique = spec.Unique()
    maps: list[dict[str, yaml.Node]] = []
    for i, item in enumerate(items):
        where = f"artifacts[{i}]"
        m = r.mapping(item, where, _ARTIFACT_KEYS)
        maps.append(m)
        image = _text(r, m["image"], f"{where}.image")
        a = spec.artifact(_spec(r, item, m, where, root, repo, env))
        unique.add(str(a.ref), image, f"{r.path}:{m['image'].start_mark.line + 1}")
        out.append(a)
    check_requires(out, lambda i, j, message, hint: r.fail(
        items[i] if j is None else maps[i]["requires"].value[j],
        message if j is None else f"artifacts[{i}].requires[{j}]: {message}", hint=hint))
    return tuple(out)


def _fail_at(r: _Reader, node: yaml.Node) -> spec.Fail:
    """A maker of errors at `node`'s line."""
    return lambda message, hint: r.fail(node, message, hint=hint)


def _text(r: _Reader, node: yaml.Node, at: str) -> spec.Text:
    """A string value with its name and its line, for artifactspec."""
    return spec.Text(r.string(node, at), at, _fail_at(r, node))


def _texts(r: _Reader, node: yaml.Node, at: str) -> spec.Texts:
    """A list of strings with their names and lines (`at[j]`), for artifactspec."""
    texts = r.strings(node, at)
    items = tuple(spec.Text(t, f"{at}[{j}]", _fail_at(r, n))
                  for j, (n, t) in enumerate(zip(node.value, texts, strict=True)))
    return spec.Texts(items, at, lambda message, hint: r.fail(node, message, hint=hint))


def _spec(r: _Reader, item: yaml.Node, m: dict[str, yaml.Node], where: str, root: Path, repo: str | None,
          env: Any) -> spec.Spec:
    """One regless.yaml artifact (its keys checked) as artifactspec's Spec."""
    def absent(value: str, at: str) -> spec.Text:
        return spec.Text(value, at, lambda message, hint: r.fail(item, message, hint=hint))

    def expand(arg: spec.BuildArg) -> str:
        try:
            return expand_env(arg.value.text, env)
        except KeyError as exc:
            raise spec.Unexpandable(f"environment variable {exc.args[0]} is not set",
                                    "set it, or write $$ for a literal $") from exc

    build_args: list[spec.BuildArg] = []
    if "buildArgs" in m:
        ba = m["buildArgs"]
        if not isinstance(ba, yaml.MappingNode):
            raise r.fail(ba, f"{where}.buildArgs must be a mapping of names to strings")
        for k_node, v_node in ba.value:
            if not isinstance(v_node, yaml.ScalarNode):
                raise r.fail(v_node, f"{where}.buildArgs.{k_node.value} must be a string")
            # the text as written: YAML would read 1.10 as 1.1
            build_args.append(spec.BuildArg(k_node.value, spec.Text(
                str(v_node.value), f"{where}.buildArgs.{k_node.value}",
                _fail_at(r, v_node))))
    requires: list[tuple[spec.Text, spec.Text | None]] = []
    if "requires" in m:
        for j, req in enumerate(r.sequence(m["requires"], f"{where}.requires")):
            rm = r.mapping(req, f"{where}.requires[{j}]", {"image": True, "alias": True})
            requires.append((_text(r, rm["image"], f"{where}.requires[{j}].image"),
                             _text(r, rm["alias"], f"{where}.requires[{j}].alias")))
    return spec.Spec(
        image=_text(r, m["image"], f"{where}.image"),
        resolve=lambda name: refs.parse(name, default_repo=repo),
        context=_text(r, m["context"], f"{where}.context") if "context" in m else absent(".", f"{where}.context"),
        root=root,
        dockerfile=(_text(r, m["dockerfile"], f"{where}.dockerfile") if "dockerfile" in m
                    else absent("Dockerfile", f"{where}.dockerfile")),
        expand=expand,
        target=r.string(m["target"], f"{where}.target") if "target" in m else None,
        build_args=tuple(build_args),
        platform=_text(r, m["platform"], f"{where}.platform") if "platform" in m else None,
        platforms=_texts(r, m["platforms"], f"{where}.platforms") if "platforms" in m else None,
        requires=tuple(requires),
        tags=_texts(r, m["tags"], f"{where}.tags") if "tags" in m else None,
        line=item.start_mark.line + 1,
    )

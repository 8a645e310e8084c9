"""One skaffold.yaml artifact -> an artifactspec.Spec (its values named in skaffold.yaml's own paths), which
artifactspec checks and makes an Artifact, as it does for regless.yaml.

What regless honours, what has no effect on the image (accepted), and what would change
the image in a way regless cannot reproduce (refused, exit 2) is decided here, field by
field; README.md's table says the same.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import artifactspec as spec
from .. import refs
from ..project import Artifact
from . import templates
from .data import Places, line_of
from .schema import BUILDABLE_TYPES, UNSUPPORTED_TYPES

_SKAFFOLD_VARS = ("IMAGE_REPO", "IMAGE_NAME", "IMAGE_TAG")

# fields that change the image and that regless cannot pass on to its builder
REFUSED = {
    "docker": {"network": "buildah's network mode is not configurable per artifact",
               "addHost": "extra /etc/hosts entries are not passed to the builder",
               "cliFlags": "docker CLI flags have no buildah equivalent regless could trust",
               "squash": "squashing changes the layers, which regless does not do",
               "secrets": "build secrets are not passed to the builder",
               "ssh": "SSH agent forwarding is not passed to the builder"},
    "kaniko": {"contextSubPath": "it moves the build context", "destination": "regless pushes IMAGE:HASH itself",
               "env": "executor environment variables are not passed", "label": "labels change the image",
               "reproducible": "it changes the image's timestamps", "singleSnapshot": "it changes the layers",
               "ignorePaths": "it changes what the snapshot holds", "whitelistVarRun": "it changes the layers",
               "flags": "executor flags are not passed", "tarPath": "regless pushes to the registry only",
               "ociLayoutPath": "regless pushes to the registry only"},
}


@dataclass(frozen=True)
class Mapped:
    """An artifact as regless builds it, or the reason it cannot be (an unsupported builder)."""

    artifact: Artifact | None
    name: str
    unsupported: str | None = None  # e.g. "jib"
    warnings: tuple[str, ...] = ()


def _str(places: Places, parent: Any, key: str | int, where: str) -> str:
    value = parent[key]
    if not isinstance(value, str):
        raise places.fail(f"{where} must be a string, not {type(value).__name__ if value is not None else 'null'}",
                          parent, key)
    return str(value)


def fail_at(places: Places, parent: Any, key: str | int | None) -> spec.Fail:
    """A maker of errors at `parent[key]` of this skaffold.yaml (at the file when parent is None)."""
    return lambda message, hint: places.fail(message, parent, key, hint=hint)


def _text(places: Places, parent: Any, key: str | int, where: str) -> spec.Text:
    """`parent[key]`, a string, with its name and place, for artifactspec."""
    return spec.Text(_str(places, parent, key, where), where, fail_at(places, parent, key))


def build_args(places: Places, node: Any, where: str, env: Mapping[str, str]) -> tuple[spec.BuildArg, ...]:
    """buildArgs as written, for artifactspec to expand with `expander`; a null value is `--build-arg NAME`, as
    in the docker CLI: the variable's value when it is set (passed as it is), else the Dockerfile's default
    (the argument is left out)."""
    if node is None:
        return ()
    if not isinstance(node, dict):
        raise places.fail(f"{where} must be a mapping of names to values", node)
    out = []
    for name, value in node.items():
        at = f"{where}.{name}"
        if value is None:
            if name in env:
                out.append(spec.BuildArg(name, spec.Text(env[name], at, fail_at(places, node, name)), literal=True))
            continue
        if isinstance(value, (dict, list)):
            raise places.fail(f"{at} must be a string, not a {'mapping' if isinstance(value, dict) else 'list'}",
                              node, name)
        text = node.raw.get(name, str(value)) if hasattr(node, "raw") and not isinstance(value, str) else str(value)
        used = [v for v in _SKAFFOLD_VARS if re.search(r"\.\s*" + v + r"\b", text)]
        if used:
            raise places.fail(f"{at} uses {used[0]}, which regless does not provide", node, name,
                              hint="regless tags with the workspace hash, of which build args are a part")
        out.append(spec.BuildArg(name, spec.Text(text, at, fail_at(places, node, name))))
    return tuple(out)


def expander(places: Places, node: Any, env: Mapping[str, str], warnings: list[str]) -> Callable[[spec.BuildArg], str]:
    """Evaluates a build arg's templates as Skaffold does (buildArgs `node`, for the places of warnings).

    An unset variable prints `<no value>`, as Go's templates make it in Skaffold: the same image Skaffold
    would build, and a warning in `warnings` naming the variable."""
    def expand(arg: spec.BuildArg) -> str:
        try:
            expanded, unset = templates.expand(arg.value.text, env)
        except templates.TemplateError as exc:
            raise spec.Unexpandable(exc.message, exc.hint) from exc
        if templates.NO_VALUE in expanded and unset:
            src = line_of(node, arg.name)
            place = f"{src.path.name}:{src.line}: " if src else ""
            warnings.append(f"{place}{arg.value.at}: {', '.join(unset)} {'is' if len(unset) == 1 else 'are'} "
                            f"not set, so the value is {expanded!r}, as in Skaffold (set it, or give a default: "
                            f"{{{{default \"\" .{unset[0]}}}}})")
        return expanded

    return expand


def _requires(places: Places, art: Any, where: str) -> tuple[tuple[spec.Text, spec.Text | None], ...]:
    node = art.get("requires")
    if node is None:
        return ()
    if not isinstance(node, list):
        raise places.fail(f"{where}.requires must be a list", art, "requires")
    out = []
    for j, req in enumerate(node):
        at = f"{where}.requires[{j}]"
        if not isinstance(req, dict):
            raise places.fail(f"{at} must be a mapping with `image` (and optionally `alias`), not "
                              f"{req!r}", node, j, hint=f"write `- image: {req}`" if isinstance(req, str) else None)
        for k in req:
            if k not in ("image", "alias"):
                raise places.fail(f"unknown key {k!r} in {at}", req, k, hint="known keys here: alias, image")
        if req.get("image") is None:
            raise places.fail(f"{at} needs `image`", node, j)
        alias = _text(places, req, "alias", f"{at}.alias") if req.get("alias") is not None else None
        alias = alias if alias is not None and alias.text else None  # Skaffold reads an empty alias as none
        out.append((_text(places, req, "image", f"{at}.image"), alias))
    return tuple(out)


def _platforms(places: Places, art: Any, where: str, build_platforms: list[str]) -> spec.Texts | None:
    """The artifact's `platforms`, else build.platforms (an empty list is Skaffold's default: none)."""
    own = bool(art.get("platforms"))
    chosen = [str(p) for p in (art.get("platforms") or build_platforms)]
    if not chosen:
        return None
    at = f"{where}.platforms" if own else "build.platforms"
    parent = art["platforms"] if own else None
    return spec.Texts(tuple(spec.Text(text, f"{at}[{j}]", fail_at(places, parent, j if own else None))
                            for j, text in enumerate(chosen)), at, fail_at(places, art if own else None,
                                                                        "platforms" if own else None))


def _type(places: Places, art: Any, where: str) -> tuple[str, Any]:
    kinds = [k for k in (*BUILDABLE_TYPES, *UNSUPPORTED_TYPES) if k in art]
    if len(kinds) > 1:
        raise places.fail(f"{where} sets {' and '.join(kinds)}: an artifact has one builder", art, kinds[1])
    kind = kinds[0] if kinds else "docker"
    return kind, art.get(kind) or {}


def _refuse(places: Places, spec: Any, kind: str, where: str) -> None:
    for field, why in REFUSED.get(kind, {}).items():
        value = spec.get(field)
        if value not in (None, "", [], {}, False) and not (field == "network" and value == "default"):
            raise places.fail(f"{where}.{kind}.{field} changes the image and regless cannot honour it: {why}",
                              spec, field, hint=f"remove {field}, or build this artifact with Skaffold")


def artifact(places: Places, art: Any, i: int, *, root: Path, default_repo: str | None, env: Mapping[str, str],
             build_platforms: list[str], deploy_tag: str | None) -> Mapped:
    """Map build.artifacts[i] (of the config in folder `root`)."""
    where = f"build.artifacts[{i}]"
    if not isinstance(art, dict):
        raise places.fail(f"{where} must be a mapping with an `image`", art)
    if art.get("image") is None:
        raise places.fail(f"{where} needs `image`", art)
    name = _str(places, art, "image", f"{where}.image")
    kind, spec_ = _type(places, art, where)
    if kind in UNSUPPORTED_TYPES:
        return Mapped(None, name, unsupported=kind)
    if not isinstance(spec_, dict):
        raise places.fail(f"{where}.{kind} must be a mapping", art, kind)
    _refuse(places, spec_, kind, where)
    warnings: list[str] = []
    if art.get("hooks"):
        warnings.append(f"{where}.hooks ({name}): regless does not run build hooks; if they make files the build "
                        "reads, run them before regless")
    has_context, has_dockerfile = art.get("context") is not None, spec_.get("dockerfile") is not None
    a = spec.artifact(spec.Spec(
        image=spec.Text(name, f"{where}.image", fail_at(places, art, "image")),
        resolve=lambda image: refs.parse(refs.skaffold_default_repo(default_repo, image)),
        context=(_text(places, art, "context", f"{where}.context") if has_context
                 else spec.Text(".", f"{where}.context", fail_at(places, art, None))),
        root=root,
        dockerfile=(_text(places, spec_, "dockerfile", f"{where}.{kind}.dockerfile") if has_dockerfile
                    else spec.Text("Dockerfile", f"{where}.{kind}.dockerfile", fail_at(places, art, None))),
        expand=expander(places, spec_.get("buildArgs"), env, warnings),
        target=_str(places, spec_, "target", f"{where}.{kind}.target") if spec_.get("target") is not None else None,
        build_args=build_args(places, spec_.get("buildArgs"), f"{where}.{kind}.buildArgs", env),
        platforms=_platforms(places, art, where, build_platforms), requires=_requires(places, art, where),
        deploy_tag=deploy_tag, line=src.line if (src := getattr(art, "src", None)) else 0,
    ))
    return Mapped(a, name, warnings=tuple(warnings))

"""skaffold.yaml -> Project: the docker and kaniko artifacts of `build.artifacts`.

Each supported field is mapped onto the regless shape, keeping the original YAML
nodes so that errors still point at skaffold.yaml's lines; every field regless does
not use is listed in one warning, never dropped silently.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from . import config
from .config import ConfigError, Project, RegistrySettings

_ARTIFACT_TYPES = ("docker", "kaniko")
_OTHER_TYPES = ("jib", "bazel", "buildpacks", "custom", "ko")
_TYPE_FIELDS = ("dockerfile", "buildArgs", "target")
_TEMPLATE_RE = re.compile(r"\{\{\s*\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def _scalar(value: str, like: yaml.Node) -> yaml.ScalarNode:
    return yaml.ScalarNode("tag:yaml.org,2002:str", value, like.start_mark, like.end_mark)


def _key(name: str, like: yaml.Node) -> yaml.ScalarNode:
    return _scalar(name, like)


def _at(node: yaml.Node) -> str:
    return f"line {node.start_mark.line + 1}"


def _build_args(node: yaml.Node) -> yaml.Node:
    """Skaffold's `{{.VAR}}` templates become regless's `${VAR}`; a null value takes the variable of its name."""
    if not isinstance(node, yaml.MappingNode):
        return node
    pairs = []
    for k, v in node.value:
        if isinstance(v, yaml.ScalarNode) and v.tag == "tag:yaml.org,2002:null":
            v = _scalar(f"${{{k.value}}}", v)
        elif isinstance(v, yaml.ScalarNode):
            v = _scalar(_TEMPLATE_RE.sub(r"${\1}", v.value.replace("$", "$$")), v)
        pairs.append((k, v))
    return yaml.MappingNode(node.tag, pairs, node.start_mark, node.end_mark)


def _artifact(r: Any, node: yaml.Node, where: str, ignored: list[str]) -> yaml.MappingNode | None:
    m = {k.value: (k, v) for k, v in node.value} if isinstance(node, yaml.MappingNode) else None
    if m is None:
        raise r.fail(node, f"{where} must be a mapping")
    other = [t for t in _OTHER_TYPES if t in m]
    if other:
        ignored.append(f"{where} ({m['image'][1].value if 'image' in m else '?'}): {other[0]} artifacts are not "
                       f"built by regless ({_at(node)})")
        return None
    pairs: list[tuple[yaml.Node, yaml.Node]] = []
    for key, (k, v) in m.items():
        if key in ("image", "context", "requires"):
            if key == "requires":
                for j, req in enumerate(v.value if isinstance(v, yaml.SequenceNode) else []):
                    extra = [rk.value for rk, _ in getattr(req, "value", []) if rk.value not in ("image", "alias")]
                    if extra:
                        ignored.append(f"{where}.requires[{j}].{', '.join(extra)} ({_at(req)})")
                    req.value = [(rk, rv) for rk, rv in req.value if rk.value in ("image", "alias")]
            pairs.append((k, v))
        elif key in _ARTIFACT_TYPES:
            if not isinstance(v, yaml.MappingNode):
                continue  # `docker: {}` or a null: all defaults
            for tk, tv in v.value:
                if tk.value in _TYPE_FIELDS:
                    pairs.append((tk, _build_args(tv) if tk.value == "buildArgs" else tv))
                else:
                    ignored.append(f"{where}.{key}.{tk.value} ({_at(tk)})")
        elif key == "platforms" and isinstance(v, yaml.SequenceNode) and len(v.value) == 1:
            pairs.append((_key("platform", k), v.value[0]))
        else:
            ignored.append(f"{where}.{key} ({_at(k)})")
    return yaml.MappingNode("tag:yaml.org,2002:map", pairs, node.start_mark, node.end_mark)


def load(path: Path, docs: list[yaml.Node], r: Any, *, default_repo: str | None, env: Any) -> Project:
    artifacts: list[yaml.Node] = []
    insecure: list[str] = []
    ignored: list[str] = []
    first: yaml.Node | None = None
    for d, doc in enumerate(docs):
        if not isinstance(doc, yaml.MappingNode):
            raise r.fail(doc, "a skaffold.yaml document must be a mapping")
        top = {k.value: (k, v) for k, v in doc.value}
        for key in ("requires", "profiles"):
            if key in top:
                ignored.append(f"{key} ({_at(top[key][0])}): regless reads this file's own build section only")
        if "build" not in top:
            continue
        build = top["build"][1]
        if not isinstance(build, yaml.MappingNode):
            raise r.fail(build, "build must be a mapping")
        for k, v in build.value:
            if k.value == "artifacts":
                for i, item in enumerate(r.sequence(v, "build.artifacts")):
                    where = f"build.artifacts[{i}]" if d == 0 else f"document {d + 1} build.artifacts[{i}]"
                    mapped = _artifact(r, item, where, ignored)
                    if mapped is not None:
                        artifacts.append(mapped)
                first = first or v
            elif k.value == "insecureRegistries":
                insecure += r.strings(v, "build.insecureRegistries")
            else:
                ignored.append(f"build.{k.value} ({_at(k)})")
    if not artifacts:
        raise ConfigError("no docker or kaniko artifacts under build.artifacts", path=str(path),
                          hint="regless builds Dockerfile artifacts; write a regless.yaml for the others")
    seq = yaml.SequenceNode("tag:yaml.org,2002:seq", artifacts, first.start_mark if first else None,
                            first.end_mark if first else None)
    built = config._artifacts(r, seq, path.parent, default_repo, env)
    warnings = (f"{path.name}: regless ignores these fields: " + "; ".join(ignored),) if ignored else ()
    return Project(path=path, root=path.parent, artifacts=built,
                   registry=RegistrySettings(insecure=tuple(insecure)), default_repo=default_repo, warnings=warnings)

"""skaffold.yaml as plain Python data that still knows where each part was written.

Profiles replace parts of a config and patch it with JSON Patch, which work on plain
dicts and lists; errors must still name the file and line of what the user wrote. So
mappings, lists and strings are subclasses that carry their place (`Src`), and copies
made by `copy.deepcopy` (which jsonpatch makes) keep it. Numbers, booleans and nulls
cannot carry it: their line is the line of their key (`Map.at`) or of their list.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

_STR = "tag:yaml.org,2002:str"


@dataclass(frozen=True)
class Src:
    """Where a value was written: file and 1-based line."""

    path: Path
    line: int


class Map(dict):  # type: ignore[type-arg]
    """A YAML mapping; `at` holds the line of each key."""

    src: Src | None = None
    where: str = ""  # skaffold.yaml's path to it (build.artifacts[i]) where a message names it
    at: dict[str, int]
    raw: dict[str, str]  # the text as written of each scalar value (YAML reads 1.10 as 1.1, Skaffold does not)

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.at = {}
        self.raw = {}


class Seq(list):  # type: ignore[type-arg]
    """A YAML sequence."""

    src: Src | None = None


class Str(str):
    """A YAML string."""

    src: Src | None = None


def _place(obj: Any, src: Src) -> Any:
    obj.src = src
    return obj


def from_node(node: yaml.Node, path: Path) -> Any:
    """The plain value of a composed YAML node, with places; duplicate keys are an error (as in Skaffold)."""
    src = Src(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out = _place(Map(), src)
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else None
            if key is None:
                raise ConfigError("a mapping key must be a plain string", path=str(path), line=k.start_mark.line + 1)
            if key in out:
                raise ConfigError(f"duplicate key {key!r} (also at line {out.at[key]})", path=str(path),
                                  line=k.start_mark.line + 1, hint="keep one of them")
            out[key] = from_node(v, path)
            out.at[key] = k.start_mark.line + 1
            if isinstance(v, yaml.ScalarNode):
                out.raw[key] = v.value
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = _place(Seq(), src)
        seq.extend(from_node(item, path) for item in node.value)
        return seq
    if node.tag == _STR:
        return _place(Str(node.value), src)
    try:
        value = yaml.constructor.SafeConstructor().construct_object(node)
    except yaml.constructor.ConstructorError as exc:
        raise ConfigError(f"cannot read the value {node.value!r}: {exc.problem}", path=str(path),
                          line=src.line) from exc
    return _place(Str(value), src) if isinstance(value, str) else value


def line_of(parent: Any, key: str | int | None = None) -> Src | None:
    """The place of `parent[key]` (or of `parent`): the value's own, else its key's, else the parent's."""
    if key is not None:
        try:
            value = parent[key]
        except (KeyError, IndexError, TypeError):
            value = None
        if getattr(value, "src", None) is not None:
            return value.src  # type: ignore[no-any-return]
        if isinstance(parent, Map) and isinstance(key, str) and key in parent.at and parent.src:
            return Src(parent.src.path, parent.at[key])
    return getattr(parent, "src", None)


class Places:
    """Makes ConfigErrors at the place of a value, for one skaffold.yaml (the fallback path)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, message: str, parent: Any = None, key: str | int | None = None,
             hint: str | None = None) -> ConfigError:
        """The error at `parent[key]` (its file and line), else at this file."""
        src = line_of(parent, key) if parent is not None else None
        return ConfigError(message, path=str(src.path if src else self.path), line=src.line if src else None,
                           hint=hint)


def did_you_mean(word: str, known: Iterable[str]) -> str | None:
    """The known key closest to a misspelt one (difflib's ratio), or None when none is close."""
    known = list(known)
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if not close:
        lowered = {k.lower(): k for k in known}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    return close[0] if close else None


def kind_of(value: Any) -> str:
    """How a value reads in an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"

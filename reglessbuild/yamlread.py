"""Reading config YAML: a file's documents (regless.yaml, skaffold.yaml) and typed access to a composed
tree (regless.yaml), with every error at file:line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import ConfigError

# libyaml's loader where PyYAML was built with it (faster: docs/performance.md); both give marks
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_T = TypeVar("_T")


def read_docs(path: Path) -> list[yaml.Node]:
    """The YAML documents of a file, with a located error for what cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", path=str(path), hint="save the file as UTF-8") from exc
    except OSError as exc:
        raise ConfigError(f"cannot be read: {exc.strerror}", path=str(path)) from exc
    try:
        return [d for d in yaml.compose_all(text, Loader=_LOADER) if d is not None]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConfigError(f"not valid YAML: {exc.problem}", path=str(path),
                          line=mark.line + 1 if mark else None) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", path=str(path)) from exc


class Reader:
    """Typed access to a composed YAML tree, with errors at file:line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, node: yaml.Node | None, message: str, hint: str | None = None) -> ConfigError:
        """A ConfigError at the node's line of this file (the caller raises it, so the check reads as one)."""
        line = node.start_mark.line + 1 if node is not None else None
        return ConfigError(message, path=str(self.path), line=line, hint=hint)

    def mapping(self, node: yaml.Node, where: str, allowed: dict[str, bool]) -> dict[str, yaml.Node]:
        """Keys of a mapping node; `allowed` maps each key to whether it is required."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{where} must be a mapping")
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key in out:
                raise self.fail(key_node, f"duplicate key {key!r} in {where}")
            if key not in allowed:
                import difflib  # only for a misspelt key

                close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
                raise self.fail(key_node, f"unknown key {key!r} in {where}",
                                hint=f"did you mean `{close[0]}`?" if close else
                                f"allowed keys: {', '.join(sorted(allowed))}")
            out[key] = value_node
        for key, required in allowed.items():
            if required and key not in out:
                raise self.fail(node, f"{where} needs the key {key!r}")
        return out

    def scalar(self, node: yaml.Node, where: str, kind: type[_T], check: Callable[[_T], bool] | None = None,
               expect: str = "") -> _T:
        """A scalar node's value as YAML's safe constructor reads it, checked to be of `kind` (an int is
        taken as a float, a bool never as an int) and to pass `check`; `expect` words the error."""
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, f"{where} must be {expect or kind.__name__}")
        value = yaml.constructor.SafeConstructor().construct_object(node)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)) or (check and not check(value)):
            raise self.fail(node, f"{where} must be {expect or kind.__name__}, not {node.value!r}")
        return value

    def string(self, node: yaml.Node, where: str) -> str:
        """A scalar that must be a string (`1` or `true` unquoted is an error, not silently a text)."""
        return str(self.scalar(node, where, str, expect="a string"))

    def strings(self, node: yaml.Node, where: str) -> list[str]:
        """A sequence of strings, each error at the item's own line."""
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{where} must be a list of strings")
        return [self.string(item, f"{where}[{i}]") for i, item in enumerate(node.value)]

    def sequence(self, node: yaml.Node, where: str) -> list[yaml.Node]:
        """The items of a sequence node, for the caller to read each."""
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{where} must be a list")
        return list(node.value)

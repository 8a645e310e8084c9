"""The neutral structure both config files are read into, and the checks both loaders share.

regless.yaml (config.py) and skaffold.yaml (skaffold/) are two ways of writing one Project; each loader
checks what only its own file can get wrong (keys, types) and translates each artifact into an
artifactspec.Spec, whose values one function checks; both hand their artifacts to `check_requires`, so
that `requires` means the same in either file. This module imports neither loader: config.py imports
skaffold/, and both import this (and artifactspec), one way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import refs
from .errors import ConfigError
from .outcomes import Reason
from .settings import BuilderSettings, RegistrySettings


@dataclass(frozen=True)
class Requirement:
    """An artifact built before this one; its hash is part of this one's."""

    image: str  # the required artifact's `image`, as written in the config
    alias: str  # build arg that receives IMAGE:HASH@DIGEST; "" (skaffold.yaml without alias): build order only


@dataclass(frozen=True)
class Artifact:
    """One image to build: where its inputs are, how to build it, what it requires, how it is tagged."""

    name: str  # `image` as written: how the user names it on the command line
    ref: refs.ImageRef  # resolved repository, no tag
    context: Path
    dockerfile: Path  # absolute
    target: str | None = None
    build_args: tuple[tuple[str, str], ...] = ()
    platform: str | None = None
    platforms: tuple[str, ...] = ()  # two or more (normalized): one image index; one is `platform`
    requires: tuple[Requirement, ...] = ()
    tags: tuple[str, ...] = ()
    line: int = 0
    deploy_tag: str | None = None  # skaffold.yaml's tagPolicy tag: also in `tags`, and what --file-output reports
    # tagPolicy inputDigest: (the Dockerfile as written, the folder Skaffold resolves it from); the tag is set
    # once the input files are listed (skaffold/inputdigest.py)
    input_digest: tuple[str, Path] | None = None


@dataclass(frozen=True)
class Skipped:
    """An artifact left out on purpose (--skip-unsupported), listed in every result."""

    name: str
    reason: Reason  # Why.UNSUPPORTED or Why.REQUIRES_LEFT_OUT


@dataclass(frozen=True)
class Project:
    """A whole config: its artifacts in the config's order, the registry and builder settings, and what
    was left out or warned about while reading it."""

    path: Path  # the config file
    root: Path  # its directory
    artifacts: tuple[Artifact, ...]
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    builder: BuilderSettings = field(default_factory=BuilderSettings)
    default_repo: str | None = None
    warnings: tuple[str, ...] = ()  # e.g. skaffold.yaml build hooks, which regless does not run
    skipped: tuple[Skipped, ...] = ()
    kind: str = "regless"  # or "skaffold": which file's words messages use

    def artifact(self, name: str) -> Artifact:
        """The artifact of this name (as written, or its resolved repository); an error listing the known ones."""
        for a in self.artifacts:
            if a.name == name or str(a.ref) == name:
                return a
        known = ", ".join(a.name for a in self.artifacts)
        raise ConfigError(f"no artifact named {name!r}", path=str(self.path), hint=f"known artifacts: {known}")


Locate = Callable[[int, "int | None", str, str], Exception]  # (artifact, its requires entry, message, hint)


def check_requires(artifacts: Sequence[Artifact], fail: Locate) -> None:
    """Every `requires` names an artifact of the project, and none leads back to itself. Else raises
    what `fail(i, j, message, hint)` makes: the error at artifact i's requires[j] (j None for a cycle),
    in the words and places of the loader's own file."""
    index = {a.name: i for i, a in enumerate(artifacts)}
    for i, a in enumerate(artifacts):
        for j, req in enumerate(a.requires):
            if req.image not in index:
                raise fail(i, j, f"{req.image!r} is not an artifact of this project",
                           f"known artifacts: {', '.join(index)}")
    state: dict[str, int] = {}  # 1: being visited (on the stack), 2: done
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for req in artifacts[index[name]].requires:
            if state.get(req.image) == 1:
                cycle = stack[stack.index(req.image):] + [req.image]
                raise fail(index[name], None, f"requires cycle: {' -> '.join(cycle)}",
                           "an artifact cannot require itself, directly or through others")
            if req.image not in state:
                visit(req.image)
        stack.pop()
        state[name] = 2

    for a in artifacts:
        if a.name not in state:
            visit(a.name)

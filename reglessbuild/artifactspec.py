"""One artifact as either config file writes it (a `Spec`), and the one set of checks that makes it an Artifact.

regless.yaml (config.py) and skaffold.yaml (skaffold/) differ in their keys, their types and their places;
each loader checks those and translates its file into a Spec: texts as written, each with its name in the
file's own words (`artifacts[0].image`, `build.artifacts[0].image`) and a maker of errors at its line. What
an artifact's values may be (an image without tag, a context and Dockerfile that exist, platforms that parse,
valid tags and alias names, build args whose expansion succeeds, one artifact per image) is checked here
only, so the same fault gets the same message in either file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import platforms, refs
from .errors import ConfigError
from .project import Artifact, Requirement

Fail = Callable[[str, "str | None"], ConfigError]  # (message, hint) -> the error at a value's place

_ARG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TAG_HINT = ("name the repository only; regless tags each image itself (with its workspace hash, or with "
            "skaffold.yaml's build.tagPolicy)")


@dataclass(frozen=True)
class Text:
    """A value as written: its text, its name in the file's own words, and a maker of errors at its line."""

    text: str
    at: str  # e.g. "artifacts[0].context"
    fail: Fail


@dataclass(frozen=True)
class Texts:
    """A list as written: its entries, its own name and a maker of errors at the list."""

    items: tuple[Text, ...]
    at: str  # e.g. "artifacts[0].platforms"
    fail: Fail


class Unexpandable(Exception):
    """A build arg whose value cannot be expanded (an unset variable, a bad template): what and how to fix."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class BuildArg:
    """One build arg: its name and value; `literal` values (skaffold.yaml's null taken from the environment)
    are passed as they are, the others go through the loader's expansion."""

    name: str
    value: Text
    literal: bool = False


@dataclass(frozen=True)
class Spec:
    """One artifact as its file writes it, before any check of its values.

    `resolve` turns the image as written into the repository pushed to (each file has its own default-repo
    rule); `expand` expands a build arg's value (each file has its own syntax) or raises Unexpandable."""

    image: Text
    resolve: Callable[[str], refs.ImageRef]
    context: Text  # relative to `root`; "." when not written (its error then at the artifact)
    root: Path
    dockerfile: Text  # relative to the context; "Dockerfile" when not written
    expand: Callable[[BuildArg], str]
    target: str | None = None
    build_args: tuple[BuildArg, ...] = ()
    platform: Text | None = None  # regless.yaml's `platform`
    platforms: Texts | None = None  # `platforms` (skaffold.yaml: the artifact's, else build.platforms)
    requires: tuple[tuple[Text, Text | None], ...] = ()  # (image, alias); no alias: build order only
    tags: Texts | None = None
    deploy_tag: str | None = None  # skaffold.yaml's tagPolicy tag, made and checked by skaffold/tags.py
    line: int = 0


def artifact(spec: Spec) -> Artifact:
    """The Artifact of `spec`, or the ConfigError (at the faulty value's place) of the first value that is wrong."""
    image = spec.image
    try:
        written = refs.parse(image.text)
        if written.tag or written.digest:
            raise image.fail(f"{image.at} {image.text!r} carries a tag or digest", TAG_HINT)
        ref = spec.resolve(image.text)
    except refs.RefError as exc:
        raise image.fail(f"{image.at}: {exc}", "name a repository, e.g. app or registry.example.com/team/app "
                         "(lowercase, no tag)") from exc
    context = (spec.root / spec.context.text).resolve()
    if not context.is_dir():
        raise spec.context.fail(f"{spec.context.at}: the folder {context} does not exist",
                                "context is relative to the folder of the config file")
    dockerfile = context / spec.dockerfile.text
    if not dockerfile.is_file():
        raise spec.dockerfile.fail(f"{spec.dockerfile.at}: the Dockerfile {dockerfile} does not exist",
                                   "dockerfile is relative to the artifact's context")
    tags = _tags(spec.tags)
    platform, several = _platforms(spec)
    return Artifact(
        name=image.text, ref=ref, context=context, dockerfile=dockerfile, target=spec.target,
        build_args=tuple(_build_arg(spec, arg) for arg in spec.build_args), platform=platform, platforms=several,
        requires=tuple(_requirement(img, alias) for img, alias in spec.requires),
        tags=tuple(tags + ([spec.deploy_tag] if spec.deploy_tag else [])), line=spec.line,
        deploy_tag=spec.deploy_tag,
    )


def _build_arg(spec: Spec, arg: BuildArg) -> tuple[str, str]:
    if arg.literal:
        return arg.name, arg.value.text
    try:
        return arg.name, spec.expand(arg)
    except Unexpandable as exc:
        raise arg.value.fail(f"{arg.value.at}: {exc.message}", exc.hint) from exc


def _requirement(image: Text, alias: Text | None) -> Requirement:
    if alias is not None and not _ARG_NAME.match(alias.text):
        raise alias.fail(f"{alias.at} {alias.text!r} is not a valid build arg name",
                         "an alias is a build arg: letters, digits and _, not starting with a digit")
    return Requirement(image.text, alias.text if alias is not None else "")


def _tags(tags: Texts | None) -> list[str]:
    if tags is None:
        return []
    for t in tags.items:
        if not refs.TAG_RE.match(t.text):
            raise t.fail(f"{tags.at}: {t.text!r} is not a valid tag", None)
    return [t.text for t in tags.items]


def _platforms(spec: Spec) -> tuple[str | None, tuple[str, ...]]:
    """`platform: P`, or `platforms: [P, …]` (one build per platform, one image index); one entry is `platform`.
    Returns (platform, platforms)."""
    many = spec.platforms
    if spec.platform is not None and many is not None:
        raise many.fail(f"{many.at} has both platform and platforms", "keep one of them")
    if spec.platform is not None:
        one = spec.platform
        try:
            platforms.parse(one.text)
        except platforms.PlatformError as exc:
            raise one.fail(f"{one.at}: {exc.message}", exc.hint) from exc
        return one.text, ()
    if many is None:
        return None, ()
    if not many.items:
        raise many.fail(f"{many.at} is empty", "list one platform or more, or leave it out")
    seen: list[str] = []
    for item in many.items:
        try:
            name = str(platforms.parse(item.text))
        except platforms.PlatformError as exc:
            raise item.fail(f"{item.at}: {exc.message}", exc.hint) from exc
        if name in seen:
            raise item.fail(f"{many.at} lists {name} twice", "list each platform once")
        seen.append(name)
    return (many.items[0].text, ()) if len(seen) == 1 else (None, tuple(seen))


class Unique:
    """One artifact per image across a project (and the configs a skaffold.yaml requires)."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}

    def add(self, key: str, image: Text, place: str) -> None:
        """Note the image written at `image` (at `place`, "file:line"); `key` is its resolved repository (for a
        skaffold.yaml artifact regless does not build, its name). An error if another artifact has that key."""
        if key in self._seen:
            raise image.fail(f"{image.at}: the image {image.text!r} is also built at {self._seen[key]}",
                             "an image is built by one artifact of one config")
        self._seen[key] = place

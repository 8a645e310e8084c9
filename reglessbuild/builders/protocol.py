"""The builder port: build one image from a context and push it as IMAGE:HASH."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..refs import ImageRef


@dataclass(frozen=True)
class BuildRequest:
    """One image to build and push as IMAGE:HASH, in the builder-neutral terms run.py knows."""

    context: Path
    dockerfile: Path  # absolute
    destination: ImageRef  # IMAGE:HASH
    target: str | None = None
    platform: str | None = None
    platforms: tuple[str, ...] = ()  # two or more: one build each, pushed as one image index under destination
    build_args: tuple[tuple[str, str], ...] = ()
    insecure_pull: bool = False  # a base image lives on a plain-http / unverified registry
    insecure_push: bool = False
    cert_dir: str | None = None  # extra CA for TLS registries (registry.caFile)


class Builder(Protocol):
    """A builder adapter (buildah, kaniko): builds one request and pushes it, one call each."""

    name: str
    multi_platform: bool  # builds `platforms` into one image index (else regless refuses such artifacts)

    def build(self, request: BuildRequest, on_line: Callable[[str], None]) -> str:
        """Build and push `request.destination`; return the pushed manifest digest. Raises BuildError."""
        ...

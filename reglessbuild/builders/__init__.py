"""Builder layer: the port, the buildah and kaniko adapters, and the factory that picks one."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from ..config import BuilderSettings
from ..errors import ToolMissing
from .buildah import INSTALL_HINT, Buildah
from .kaniko import Kaniko
from .protocol import Builder, BuildRequest

__all__ = ["BuildRequest", "Builder", "Buildah", "Kaniko", "choose"]


@dataclass(frozen=True)
class Choice:
    builder: Builder
    source: str


def choose(settings: BuilderSettings, *, push_deadline: float = 60.0) -> Choice:
    if settings.kind == "kaniko":
        exe = settings.kaniko.executor
        if not (shutil.which(exe) or os.access(exe, os.X_OK)):
            raise ToolMissing(f"kaniko executor {exe} not found",
                              hint="set builder.kaniko.executor to the executor's path (in kaniko's image: "
                                   "/kaniko/executor)")
        return Choice(Kaniko(settings.kaniko), "config")
    if not shutil.which("buildah"):
        raise ToolMissing("buildah not found on PATH", hint=INSTALL_HINT)
    return Choice(Buildah(settings.buildah, push_deadline=push_deadline), "config" if settings.kind else "default")

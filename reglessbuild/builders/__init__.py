"""Builder layer: the port, the buildah and kaniko adapters, and the factory that picks one."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import proc
from ..errors import ToolMissing
from .protocol import Builder, BuildRequest

if TYPE_CHECKING:
    from ..settings import BuilderSettings
    from .buildah import Buildah
    from .kaniko import Kaniko

__all__ = ["BuildRequest", "Buildah", "Builder", "Kaniko", "choose"]


def __getattr__(name: str) -> Any:
    """Buildah and Kaniko, imported when first asked for: run.py needs only the protocol's types."""
    if name == "Buildah":
        from .buildah import Buildah
        return Buildah
    if name == "Kaniko":
        from .kaniko import Kaniko
        return Kaniko
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Choice:
    """The builder chosen, and why ("config", "default")."""

    builder: Builder
    source: str


def choose(settings: BuilderSettings, *, push_deadline: float = 60.0, keep_images: bool = False,
           procs: proc.Processes = proc.LOCAL) -> Choice:
    """buildah (the default) or kaniko as the settings say, refused (ToolMissing) when not installed;
    its subprocesses started through `procs`."""
    if settings.kind == "kaniko":
        exe = settings.kaniko.executor
        if not (shutil.which(exe) or os.access(exe, os.X_OK)):
            raise ToolMissing(f"kaniko executor {exe} not found",
                              hint="set builder.kaniko.executor to the executor's path (in kaniko's image: "
                                   "/kaniko/executor)")
        from .kaniko import Kaniko

        return Choice(Kaniko(settings.kaniko, procs=procs), "config")
    from .buildah import INSTALL_HINT, Buildah

    if not shutil.which("buildah"):
        raise ToolMissing("buildah not found on PATH", hint=INSTALL_HINT)
    return Choice(Buildah(settings.buildah, push_deadline=push_deadline, keep_images=keep_images, procs=procs),
                  "config" if settings.kind else "default")

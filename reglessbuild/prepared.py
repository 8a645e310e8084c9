"""An artifact once hashed (`Prepared`), the value run.prepare makes and the Runner, the plan, fanout and
the commands read; and the inputs record made from it (`record_of`), stored beside an image it built.

A module of its own so that the steps that make it (run.py) and the one that acts on it (runner.py)
both depend on it, not on each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import Artifact
from .hashing import inputs
from .refs import ImageRef


@dataclass(frozen=True)
class Prepared:
    """One artifact hashed: its inputs and their hash, the IMAGE:HASH it is built or found as."""

    artifact: Artifact
    inputs: inputs.Inputs
    target: ImageRef  # IMAGE:HASH
    seconds: float
    bases: tuple[str, ...] = ()  # every base as it enters the hash (FROM text; "platform text" for several)
    complete: bool = True  # every base (of this artifact and those it requires) resolved: the hash is final
    ignore_file: str | None = None  # the .dockerignore that chose the files


def record_of(p: Prepared) -> dict[str, Any]:
    """The inputs record of a prepared artifact: explain's snapshot, the hash recipe and the artifact."""
    from . import explain  # a record is made once an image is built or retagged, while or after the builder runs

    return {**explain.snapshot(p.inputs), "recipe": inputs.RECIPE, "artifact": p.artifact.name}

"""skaffold.yaml support: the loader (loader.py) and its parts, imported only when a skaffold.yaml is read.

skaffold.yaml is read into the same Project as regless.yaml (project.py), whose `check_requires` both
loaders share; config.py imports this package, and nothing here imports config.py. regless.yaml projects
never pay for importing the loader's parts (jsonpatch, zoneinfo, the schema): `load` imports the loader
on first use. `in_skaffold_words` puts messages of regless's shared layers (registry,
builder) in skaffold.yaml's words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..project import Project


def load(path: Path, docs: list[Any], *, default_repo: str | None, env: Mapping[str, str],
         profiles: tuple[str, ...] = (), skip_unsupported: bool = False) -> Project:
    """The Project of a skaffold.yaml (see loader.load)."""
    from . import loader

    return loader.load(path, docs, default_repo=default_repo, env=env, profiles=profiles,
                       skip_unsupported=skip_unsupported)


_REGLESS_WORDS = ((r"registry\.insecure: \[([^\]]*)\]",
                   r"build.insecureRegistries: [\1] in skaffold.yaml, or pass --insecure-registry \1"),
                  (r"\bregistry\.insecure\b", "build.insecureRegistries"),
                  (r"; registry\.timeout sets how long to retry", ""),
                  (r"\bdefaultRepo\b", "--default-repo"),
                  (r"\bregless\.yaml\b", "skaffold.yaml"))  # compiled by re.sub when an error needs them


def in_skaffold_words(message: str) -> str:
    """A message from regless's shared layers (registry, builder) in skaffold.yaml's words."""
    for pattern, words in _REGLESS_WORDS:
        message = re.sub(pattern, words, message)
    return message

"""Where the index lives by default: one small function, for the commands and a replay (which must not
import the commands' modules to find it)."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """--cache-dir's default: $REGLESS_CACHE_DIR, $XDG_CACHE_HOME/regless or ~/.cache/regless."""
    if d := os.environ.get("REGLESS_CACHE_DIR"):
        return Path(d)
    if d := os.environ.get("XDG_CACHE_HOME"):
        return Path(d) / "regless"
    return Path.home() / ".cache" / "regless"

"""An index set aside: a corrupt, truncated or foreign LMDB index moved out of the way (index.Index.open
lists each in `moved`, for the run to warn about). Imported only when that happens: a run that opens a
sound index, as nearly every run does, does not create the class.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Moved:
    """A corrupt or foreign index that was set aside."""

    path: Path
    reason: str


def set_aside(path: Path, reason: str) -> Moved:
    """Rename the index folder `path` to index.corrupt-<time>-<pid> beside it; what was moved, and why."""
    aside = path.with_name(f"index.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    path.rename(aside)
    return Moved(aside, reason)

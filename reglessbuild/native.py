"""The C part of hashing's per-file loops (reglessbuild/_native.c), loaded in one place: inputs.py runs
it, and `regless version` says whether it is here without importing the hashing modules."""

from __future__ import annotations

from types import ModuleType

loops: ModuleType | None
try:  # setup.py builds it where a compiler is found; else inputs.py runs its Python loops
    from . import _native as loops
except ImportError:  # pragma: no cover - depends on the install
    loops = None


def engine() -> str:
    """Which loops hash here, for `regless version`."""
    if loops is not None:
        return "C part (reglessbuild/_native.c)"
    return ("Python loops, slower: the C part is not built (install gcc, python3-dev and libxxhash-dev, "
            "then reinstall regless)")

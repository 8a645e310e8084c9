"""The one place that chooses the hashing engine: the C engine where reglessbuild/_native was built,
else the Python engine. With REGLESS_REQUIRE_NATIVE=1 (bin/test, after installing the compiler and
headers) a missing C part is an error, not a slower run.

Importing this module loads only the C part itself (not typing, contextlib or the hashing modules), so
`regless version` can say which engine hashes without them (tests/test_startup.py).
"""

from __future__ import annotations

import os
from types import ModuleType

from ..errors import ReglessError

TYPE_CHECKING = False  # not typing's: importing typing costs `regless version` (mypy reads this name as it)
if TYPE_CHECKING:
    from .port import Engine

native: ModuleType | None
try:  # setup.py builds it where a compiler is found
    from .. import _native as native  # type: ignore[attr-defined,no-redef]  # C, no stubs
except ImportError:  # pragma: no cover - depends on the install
    native = None

_chosen: Engine | None = None


class NativeMissing(ReglessError):
    """REGLESS_REQUIRE_NATIVE=1, and reglessbuild/_native was not built."""


def engine() -> Engine:
    """The engine of this process, chosen on first use."""
    global _chosen
    if _chosen is None:
        _chosen = _choose()
    return _chosen


def _choose() -> Engine:
    if native is not None:
        from .c_engine import CEngine

        return CEngine(native)
    if os.environ.get("REGLESS_REQUIRE_NATIVE") == "1":
        raise NativeMissing("reglessbuild._native is not built, and REGLESS_REQUIRE_NATIVE=1 requires it",
                            hint="install gcc, python3-dev and libxxhash-dev, then reinstall regless")
    from .python_engine import PythonEngine

    return PythonEngine()


def python() -> Engine:
    """The Python engine, whatever is built (for the tests and the benchmark that hold both to the same
    results)."""
    from .python_engine import PythonEngine

    return PythonEngine()


class using:  # noqa: N801 - used as a function: `with using(engine):`
    """Hash with `chosen` inside the block (tests and benchmarks compare the engines)."""

    def __init__(self, chosen: Engine) -> None:
        self.chosen = chosen
        self.was: Engine | None = None

    def __enter__(self) -> Engine:
        global _chosen
        self.was, _chosen = _chosen, self.chosen
        return self.chosen

    def __exit__(self, *exc: object) -> None:
        global _chosen
        _chosen = self.was


def describe() -> str:
    """Which engine hashes here, for `regless version`."""
    if native is not None:
        return "C part (reglessbuild/_native, built from reglessbuild/csrc)"
    return ("Python loops, slower: the C part is not built (install gcc, python3-dev and libxxhash-dev, "
            "then reinstall regless)")

"""The registry ports, both on full image references.

`Registry` is what a tool adapter (crane.py, skopeo.py) offers: one attempt of each operation, its
faults raised as classified by faults.py. `RegistryService` is what the orchestration (run.py, the
Runner), the cache commands and the records are given: the same operations retried and copies
verified (registry.Reliable), or an in-memory fake in tests (tests/fakes.py). Depending on these
Protocols rather than on Reliable keeps the orchestration testable without a registry process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ..refs import ImageRef


class Registry(Protocol):
    """One registry tool, one attempt per call."""

    name: str  # "skopeo" | "crane": the tool behind it

    def digest(self, ref: ImageRef) -> str | None:
        """The manifest digest of `ref`; None only for a definite "not found"."""
        ...

    def copy(self, src: ImageRef, dst: ImageRef) -> None:
        """Make `dst` carry exactly the manifest of `src` (same digest); blobs mounted or copied."""
        ...

    def manifest(self, ref: ImageRef) -> bytes | None:
        """The manifest of `ref` exactly as the registry serves it; None for a definite "not found"."""
        ...

    def push_layout(self, layout: Path, ref: ImageRef, *, index_only: bool = False) -> None:
        """Push the one entry of an OCI layout to `ref`, digests kept (records.py)."""
        ...

    def pull_layout(self, ref: ImageRef, layout: Path) -> None:
        """Pull `ref` into an OCI layout, digests kept (records.py)."""
        ...


class RegistryService(Protocol):
    """The registry as the orchestration sees it: operations retried, copies verified, calls counted."""

    name: str  # the tool behind it, for the report
    calls: int  # registry operations asked for so far (the report's registryCalls)

    def digest(self, ref: ImageRef) -> str | None:
        """The manifest digest of `ref`; None only for a definite "not found"."""
        ...

    def copy(self, src: ImageRef, dst: ImageRef) -> str:
        """Make `dst` carry the manifest of `src` and check that it does; returns that digest."""
        ...

    def manifest(self, ref: ImageRef) -> bytes | None:
        """The manifest of `ref` exactly as the registry serves it; None for a definite "not found"."""
        ...

    def push_layout(self, layout: Path, ref: ImageRef, *, index_only: bool = False) -> None:
        """Push the one entry of an OCI layout to `ref`, digests kept (records.py)."""
        ...

    def pull_layout(self, ref: ImageRef, layout: Path) -> None:
        """Pull `ref` into an OCI layout, digests kept (records.py)."""
        ...

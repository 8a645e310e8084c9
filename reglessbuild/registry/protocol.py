"""The registry port: two operations, both on full image references."""

from __future__ import annotations

from typing import Protocol

from ..refs import ImageRef


class Registry(Protocol):
    name: str  # "skopeo" | "crane": the tool behind it

    def digest(self, ref: ImageRef) -> str | None:
        """The manifest digest of `ref`; None only for a definite "not found"."""
        ...

    def copy(self, src: ImageRef, dst: ImageRef) -> None:
        """Make `dst` carry exactly the manifest of `src` (same digest); blobs mounted or copied."""
        ...

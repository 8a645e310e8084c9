"""Which registries a setting names: one small function, for the image references' module and the direct
client (which a replayed restart imports without the references' module)."""

from __future__ import annotations

from collections.abc import Sequence


def registry_matches(registry: str, patterns: Sequence[str]) -> bool:
    """True when `registry` (host[:port]) is named by one of `patterns` (host or host:port)."""
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    return any(p == registry or p == host for p in patterns)

"""regless.yaml's `registry` and `builder` sections: the settings and how they are read."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .yamlread import Reader


@dataclass(frozen=True)
class RegistrySettings:
    """regless.yaml's `registry`: which tool talks to registries and how (TLS, concurrency, the retry
    deadline, inputs records). The defaults are what a config without the section gets."""

    tool: str = "auto"
    insecure: tuple[str, ...] = ()
    concurrency: int = 16
    timeout: float = 60.0  # total seconds of retrying one registry operation
    ca_file: Path | None = None  # PEM CA bundle trusted for TLS registries, besides the system's
    records: bool = True  # push each built image's inputs record beside it (records.py), for explain anywhere


@dataclass(frozen=True)
class BuildahSettings:
    """regless.yaml's `builder.buildah`: the flags regless passes to buildah, defaulting to what works
    unprivileged in a container (vfs, chroot) and builds reproducibly (timestamp 0)."""

    storage_driver: str = "vfs"
    isolation: str = "chroot"
    layers: bool = True
    retry: int | None = None  # buildah's own --retry for pulls and pushes (its default: 3)
    # buildah's --retry-delay. Not buildah's 2 s: regless paces the attempts of a push itself (retrying.py),
    # and at a flaky registry buildah's 2 s made each attempt much longer (docs/performance.md)
    retry_delay: str | None = "100ms"
    # buildah's --timestamp: the image's created time and every file's time in its layers, so that the same
    # inputs give the same digest on any runner (0: the epoch); None keeps the build's own time
    timestamp: int | None = 0


@dataclass(frozen=True)
class KanikoSettings:
    """regless.yaml's `builder.kaniko`: where the executor is and the flags regless passes it (kaniko runs
    inside a container of its own image, so the executor's path is part of the config)."""

    executor: str = "/kaniko/executor"
    cache: bool = False
    cache_repo: str | None = None
    reproducible: bool = True  # the executor's --reproducible: timestamps stripped, the same digest anywhere


@dataclass(frozen=True)
class BuilderSettings:
    """regless.yaml's `builder`: which builder runs the builds, how many at once, and each builder's own
    settings (only the chosen one's are used)."""

    kind: str = "buildah"
    concurrency: int = 1
    buildah: BuildahSettings = field(default_factory=BuildahSettings)
    kaniko: KanikoSettings = field(default_factory=KanikoSettings)


def _positive_int(r: Reader, node: yaml.Node, where: str) -> int:
    return int(r.scalar(node, where, int, lambda v: v > 0, "a positive integer"))


def registry(r: Reader, node: yaml.Node) -> RegistrySettings:
    """The `registry` section read and checked (unknown keys, types, ranges: a ConfigError at file:line);
    a caFile is resolved against the config file's folder and must exist."""
    m = r.mapping(node, "registry", {"tool": False, "insecure": False, "concurrency": False, "timeout": False,
                                     "caFile": False, "records": False})
    d = RegistrySettings()
    ca_file = None
    if "caFile" in m:
        ca_file = (r.path.parent / r.string(m["caFile"], "registry.caFile")).resolve()
        if not ca_file.is_file():
            raise r.fail(m["caFile"], f"registry.caFile {ca_file} does not exist",
                         hint="a PEM file of the CA that signed the registry's certificate, relative to this file")
    return RegistrySettings(
        ca_file=ca_file,
        tool=r.scalar(m["tool"], "registry.tool", str, lambda v: v in ("auto", "crane", "skopeo"),
                      "one of auto, crane, skopeo") if "tool" in m else d.tool,
        insecure=tuple(r.strings(m["insecure"], "registry.insecure")) if "insecure" in m else d.insecure,
        concurrency=_positive_int(r, m["concurrency"], "registry.concurrency") if "concurrency" in m else d.concurrency,
        timeout=r.scalar(m["timeout"], "registry.timeout", float, lambda v: v > 0, "a positive number of seconds")
        if "timeout" in m else d.timeout,
        records=r.scalar(m["records"], "registry.records", bool, expect="true or false") if "records" in m
        else d.records,
    )


def builder(r: Reader, node: yaml.Node) -> BuilderSettings:
    """The `builder` section read and checked (a ConfigError at file:line), keys not given keeping the
    defaults of BuilderSettings."""
    m = r.mapping(node, "builder", {"kind": False, "concurrency": False, "buildah": False, "kaniko": False})
    d = BuilderSettings()
    buildah = d.buildah
    if "buildah" in m:
        b = r.mapping(m["buildah"], "builder.buildah", {"storageDriver": False, "isolation": False, "layers": False,
                                                        "retry": False, "retryDelay": False, "timestamp": False})
        buildah = BuildahSettings(
            storage_driver=r.string(b["storageDriver"], "builder.buildah.storageDriver")
            if "storageDriver" in b else buildah.storage_driver,
            isolation=r.scalar(b["isolation"], "builder.buildah.isolation", str,
                               lambda v: v in ("chroot", "oci", "rootless"), "one of chroot, oci, rootless")
            if "isolation" in b else buildah.isolation,
            layers=r.scalar(b["layers"], "builder.buildah.layers", bool, expect="true or false")
            if "layers" in b else buildah.layers,
            retry=r.scalar(b["retry"], "builder.buildah.retry", int, lambda v: v >= 0, "0 or more")
            if "retry" in b else buildah.retry,
            retry_delay=r.scalar(b["retryDelay"], "builder.buildah.retryDelay", str,
                                 lambda v: re.fullmatch(r"\d+(\.\d+)?(ms|s|m)", v) is not None,
                                 "a duration such as 500ms or 2s") if "retryDelay" in b else buildah.retry_delay,
            timestamp=None if "timestamp" in b and b["timestamp"].tag == "tag:yaml.org,2002:null" else
            r.scalar(b["timestamp"], "builder.buildah.timestamp", int, lambda v: v >= 0,
                     "seconds since the epoch (0 or more), or null") if "timestamp" in b else buildah.timestamp,
        )
    kaniko = d.kaniko
    if "kaniko" in m:
        k = r.mapping(m["kaniko"], "builder.kaniko", {"executor": False, "cache": False, "cacheRepo": False,
                                                      "reproducible": False})
        kaniko = KanikoSettings(
            executor=r.string(k["executor"], "builder.kaniko.executor") if "executor" in k else kaniko.executor,
            cache=r.scalar(k["cache"], "builder.kaniko.cache", bool, expect="true or false")
            if "cache" in k else kaniko.cache,
            cache_repo=r.string(k["cacheRepo"], "builder.kaniko.cacheRepo")
            if "cacheRepo" in k and k["cacheRepo"].tag != "tag:yaml.org,2002:null" else None,
            reproducible=r.scalar(k["reproducible"], "builder.kaniko.reproducible", bool, expect="true or false")
            if "reproducible" in k else kaniko.reproducible,
        )
    return BuilderSettings(
        kind=r.scalar(m["kind"], "builder.kind", str, lambda v: v in ("buildah", "kaniko"), "buildah or kaniko")
        if "kind" in m else d.kind,
        concurrency=_positive_int(r, m["concurrency"], "builder.concurrency") if "concurrency" in m else d.concurrency,
        buildah=buildah,
        kaniko=kaniko,
    )

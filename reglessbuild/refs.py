"""Image references: parse, validate, normalize, format (docker/distribution grammar)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .hosts import registry_matches as registry_matches  # the tools' adapters and the runner ask it here

DEFAULT_REGISTRY = "docker.io"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_HOST_RE = re.compile(r"^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")


class RefError(ValueError):
    """The text is not a valid image reference."""


@dataclass(frozen=True, order=True)
class ImageRef:
    """A parsed image reference, normalized (docker.io, library/): one value to compare, sort and format, so
    that the same image written two ways is one image to the index and the plan."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """registry/repository, no tag or digest."""
        return f"{self.registry}/{self.repository}"

    def with_tag(self, tag: str) -> ImageRef:
        """The same repository at `tag`, without a digest (a digest would pin it to other content)."""
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> ImageRef:
        """The same reference pinned to `digest`; a tag, if any, stays (repo:tag@digest)."""
        return replace(self, digest=digest)

    def bare(self) -> ImageRef:
        """The repository alone, no tag or digest: the base to add another tag or digest to."""
        return replace(self, tag=None, digest=None)

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def _split_host(text: str) -> tuple[str | None, str]:
    first, sep, rest = text.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        return first, rest
    return None, text


def has_registry(text: str) -> bool:
    """Whether the text's first component names a registry host (a dot, a port, localhost or an IPv6
    address), as docker's reference grammar decides: otherwise the image is on docker.io."""
    return _split_host(text)[0] is not None


def parse(text: str, *, default_repo: str | None = None) -> ImageRef:
    """Parse `[registry/]repo[:tag][@digest]`.

    A name without a registry gets `default_repo` as prefix when one is given,
    else Docker Hub's `docker.io[/library]`.
    """
    original = text
    if not text or text != text.strip():
        raise RefError(f"invalid image reference {original!r}: empty or surrounded by spaces")
    digest = None
    if "@" in text:
        text, digest = text.rsplit("@", 1)
        if not _DIGEST_RE.match(digest):
            raise RefError(f"invalid image reference {original!r}: bad digest {digest!r} (want sha256:<64 hex>)")
    tag = None
    last = text.rsplit("/", 1)[-1]
    if ":" in last:
        text, tag = text.rsplit(":", 1)
        if not TAG_RE.match(tag):
            raise RefError(f"invalid image reference {original!r}: bad tag {tag!r}")
    host, path = _split_host(text)
    if host is None:
        if default_repo:
            base = parse(default_repo.rstrip("/"))
            host, path = base.registry, f"{base.repository}/{path}"
        else:
            host = DEFAULT_REGISTRY
            if "/" not in path:
                path = f"library/{path}"
    if not _HOST_RE.match(host):
        raise RefError(f"invalid image reference {original!r}: bad registry host {host!r}")
    if not _PATH_RE.match(path):
        raise RefError(
            f"invalid image reference {original!r}: repository {path!r} must be lowercase "
            "letters, digits and separators (. _ - /)"
        )
    return ImageRef(host, path, tag, digest)


_ESCAPE_RE = re.compile(r"[/._:@]")
# Skaffold's prefixRegex (pkg/skaffold/docker/default_repo.go): a registry domain and a GCP project id
_GCP_PREFIX_RE = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)"
                            r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
                            r"(?::[0-9]+)?/[a-z][a-z0-9-]{4,28}[a-z0-9]/?")
MAX_NAME = 255


def skaffold_default_repo(default_repo: str | None, image: str, *, multi_level: bool | None = None) -> str:
    """The name Skaffold pushes `image` (as written in skaffold.yaml, no tag) to under `default_repo`.

    Skaffold's rules ("Image Repository Handling"; SubstituteDefaultRepoIntoImage): an image that already
    starts with the default repo is kept; for a default repo on gcr.io or Artifact Registry (which take
    repositories of any depth) the image is appended, minus a project prefix both share; for any other
    registry the image is escaped (`/ . _ : @` become `_`) and appended, so two names never collide. Each
    result is cut to 255 characters. `multi_level` (Skaffold's --multi-level-repo) forces the first way.
    """
    if not default_repo:
        return image
    if image.startswith(default_repo):
        return image
    original = _GCP_PREFIX_RE.match(image)
    repo_prefix = _GCP_PREFIX_RE.match(default_repo)
    original_p = original.group(0) if original else ""
    repo_p = repo_prefix.group(0) if repo_prefix else ""
    multi = "gcr.io" in repo_p or "-docker.pkg.dev" in repo_p or (multi_level if multi_level is not None else False)
    if multi:
        if original_p == repo_p:
            return default_repo + "/" + image[len(original_p):]
        return (default_repo + "/" + image)[:MAX_NAME]
    return (default_repo + "/" + _ESCAPE_RE.sub("_", image))[:MAX_NAME]

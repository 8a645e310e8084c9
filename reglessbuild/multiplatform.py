"""An artifact with `platforms: [A, B, …]`: one Dockerfile analysis per platform, joined into one.

Each platform's build may read other files (`COPY dist/$TARGETPLATFORM/…`), other stages
(`FROM bin-$TARGETARCH`) and other base manifests, so the joined analysis reads the union of what
every platform reads, and every base is kept with the platform it is pulled for: the one hash of
the artifact (and its one image index) covers every platform's inputs. A single-platform artifact
never comes here: its analysis and hash stay as they were.
"""

from __future__ import annotations

from dataclasses import replace

from . import dockerfile
from .config import Artifact, Project
from .dockerfile import Analysis, BaseImage
from .manifests import Wanted
from .platforms import parse


def analyze(a: Artifact, build_args: dict[str, str]) -> Analysis:
    """The union of the artifact's analyses for each of its platforms; every base carries its platform."""
    sources: dict[dockerfile.Source, None] = {}
    bases: dict[BaseImage, None] = {}
    remote: dict[str, None] = {}
    unchecked: dict[str, None] = {}
    stages: dict[str, None] = {}
    platform_args = False
    for name in a.platforms:
        an = dockerfile.analyze(a.dockerfile, build_args=build_args, target=a.target, platform=parse(name))
        sources.update(dict.fromkeys(an.sources))
        bases.update(dict.fromkeys(BaseImage(b.text, b.line, b.platform or name) for b in an.bases))
        remote.update(dict.fromkeys(an.remote))
        unchecked.update(dict.fromkeys(an.unchecked))
        stages.update(dict.fromkeys(an.stages))
        platform_args = platform_args or an.platform_args
    return Analysis(tuple(sources), tuple(bases), tuple(remote), tuple(stages), platform_args, tuple(unchecked))


def wanted(a: Artifact, an: Analysis) -> list[Wanted]:
    """The bases to resolve per platform (a required artifact's placeholder is not one)."""
    return [Wanted(b.text, b.platform or "", str(a.dockerfile), b.line) for b in an.bases
            if not b.text.startswith(dockerfile.PENDING_PREFIX)]


def base_key(b: BaseImage) -> str:
    """How a base of a multi-platform artifact enters the hash: its platform, then its text."""
    return f"{b.platform} {b.text}"


def hashed_platform(a: Artifact) -> str:
    """The platforms as they enter the hash, in the configured order (the order of the index)."""
    return ",".join(a.platforms)


def with_platforms(project: Project, texts: list[str]) -> Project:
    """`--platform A,B` (repeatable) for every artifact, over `platform`/`platforms` in the config, as
    Skaffold's flag does. Raises PlatformError (exit 2) for a platform that is not os/arch[/variant]."""
    names: list[str] = []
    for text in (t for arg in texts for t in arg.split(",") if t.strip()):
        name = str(parse(text))
        if name not in names:
            names.append(name)
    if not names:
        return project
    one = {"platform": names[0], "platforms": ()} if len(names) == 1 else {"platform": None, "platforms": tuple(names)}
    return replace(project, artifacts=tuple(replace(a, **one) for a in project.artifacts))

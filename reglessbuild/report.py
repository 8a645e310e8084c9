"""Results of a run, and their text and JSON renderings (no I/O here: renderers return strings)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .outcomes import DONE, Failure, Outcome, Reason


@dataclass(frozen=True)
class ArtifactResult:
    """What happened to one artifact in a run: its outcome and why, its image, the time it took or saved."""

    name: str
    image: str  # repository, no tag
    hash: str
    outcome: Outcome
    reason: Reason | None = None
    digest: str | None = None
    source: str | None = None  # retagged from
    seconds: dict[str, float] = field(default_factory=dict)
    saved_seconds: float = 0.0
    error: Failure | None = None  # of a failed one, or of one skipped because one it requires failed
    tail: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    deploy_tag: str | None = None  # the tag Skaffold's tagPolicy gives this image (None: the hash is the tag)
    exit_code: int = 1  # of a failed one: 3 where the registry refused it or could not be reached
    why: tuple[str, ...] = ()  # of a built one: the first changes since its previous inputs (previous.py)
    log: str | None = None  # the file holding the builder's full output of this run (buildlog.py)

    @property
    def reference(self) -> str:
        """IMAGE:HASH, with @DIGEST once known."""
        ref = f"{self.image}:{self.hash}"
        return f"{ref}@{self.digest}" if self.digest else ref


@dataclass(frozen=True)
class Report:
    """A whole run: every artifact's result, the phases' seconds and the tools that did the work."""

    results: tuple[ArtifactResult, ...]
    phases: dict[str, float]  # wall seconds per phase: hash, check, retag, build
    registry_tool: str
    builder: str
    registry_calls: int = 0
    builds_started: int = 0
    warnings: tuple[str, ...] = ()
    registry_source: str = ""  # why this registry tool: config, PATH
    builder_source: str = ""  # why this builder: config, default
    replayed: bool = False  # the results of the run before, nothing they came from having changed (replay.py)

    @property
    def failed(self) -> bool:
        """An artifact failed, or was skipped because one it requires failed (left out on purpose is no failure)."""
        return any(r.error is not None for r in self.results)

    @property
    def exit_code(self) -> int:
        """0, or the gravest exit code of the artifacts that failed (3 for a registry's refusal over 1)."""
        return max((r.exit_code for r in self.results if r.error is not None), default=0)

    @property
    def saved_seconds(self) -> float:
        """The build time the run's hits saved: the recorded build times of the images they reused."""
        return sum(r.saved_seconds for r in self.results)


def counts(report: Report) -> dict[Outcome, int]:
    """How many artifacts had each outcome."""
    out: dict[Outcome, int] = {}
    for r in report.results:
        out[r.outcome] = out.get(r.outcome, 0) + 1
    return out


def deploy_reference(r: ArtifactResult) -> str:
    """What Skaffold reports as an image's `tag`: the pushed name, its policy's tag (or the hash) and the digest."""
    return f"{r.image}:{r.deploy_tag or r.hash}@{r.digest}" if r.digest else r.reference


def skaffold_builds(report: Report, order: list[str] | tuple[str, ...] = ()) -> str:
    """Skaffold's build output (`skaffold build --file-output`), readable by `skaffold deploy --build-artifacts`.

    `imageName` is the image exactly as written in the config: `skaffold deploy` looks each artifact of its
    skaffold.yaml up by that string (cmd/skaffold/app/cmd/util.go, build.MergeWithPreviousBuilds), and fails
    with "no tag provided for image [...]" for one it does not find. Entries follow `order` (the config's).
    """
    rank = {name: i for i, name in enumerate(order)}
    done = [r for r in report.results if r.digest and r.outcome in DONE]
    done.sort(key=lambda r: rank.get(r.name, len(rank)))
    return json.dumps({"builds": [{"imageName": r.name, "tag": deploy_reference(r)} for r in done]}, indent=2)


def summary(report: Report) -> str:
    """The last line of a build: the count of each outcome, the phases' seconds and the time saved."""
    c = counts(report)
    order = (Outcome.CACHED, Outcome.RETAGGED, Outcome.BUILT, Outcome.FAILED, Outcome.SKIPPED)
    parts = [f"{c[k]} {k}" for k in order if c.get(k)]
    ph = report.phases
    times = ", ".join(f"{k} {ph[k]:.2f}s" for k in ("hash", "check", "retag", "build") if ph.get(k))
    line = f"{len(report.results)} artifacts: {', '.join(parts)} — {times}" if times else \
        f"{len(report.results)} artifacts: {', '.join(parts)}"
    if report.saved_seconds > 0:
        line += f"; build time saved ≈ {report.saved_seconds:.1f}s"
    return line

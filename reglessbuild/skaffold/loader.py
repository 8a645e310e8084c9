"""skaffold.yaml -> Project: every config of a project (documents, `requires`), with profiles applied.

Strict like Skaffold: an unknown key is an error naming the closest known one; a field
that would change the image in a way regless cannot reproduce is refused by name; an
artifact of a builder regless lacks (jib, buildpacks, ...) is refused unless the caller
leaves such artifacts out on purpose (`skip_unsupported`), and then they are listed.
Messages use skaffold.yaml's own paths (`build.artifacts[0].docker.buildArgs.MSG`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import artifactspec, refs
from ..errors import ConfigError, InputError
from ..outcomes import Reason, Why
from ..project import Artifact, Project, Skipped, check_requires
from ..settings import BuilderSettings, RegistrySettings
from . import artifacts as arts
from . import configs, tags
from .data import line_of


def _default_repo(flag: str | None, env: Mapping[str, str]) -> str | None:
    """--default-repo, else $SKAFFOLD_DEFAULT_REPO (Skaffold's order; its global config is not read)."""
    repo, source = (flag, "--default-repo") if flag else (env.get("SKAFFOLD_DEFAULT_REPO"), "SKAFFOLD_DEFAULT_REPO")
    if not repo:
        return None
    try:
        parsed = refs.parse(repo)
    except refs.RefError as exc:
        raise InputError(f"{source} {repo!r} is not a repository: {exc}",
                         hint="give a registry and path, e.g. registry.example.com/team") from exc
    if parsed.tag or parsed.digest:
        raise InputError(f"{source} {repo!r} carries a tag or digest", hint="give a registry and path only")
    return repo.rstrip("/")


def _cascade(mapped: list[tuple[arts.Mapped, Any]], skip: bool) -> tuple[list[Artifact], list[Skipped]]:
    """Leave out unsupported artifacts (or refuse them), and with them those that require them."""
    kept: list[Artifact] = []
    skipped: list[Skipped] = []
    gone: set[str] = set()
    for m, (places, node) in mapped:
        if m.unsupported:
            if not skip:
                raise places.fail(f"{configs.where_artifact(node)} ({m.name}) is a {m.unsupported} artifact, which "
                                  "regless cannot build", node, m.unsupported,
                                  hint="build it with Skaffold, or pass --skip-unsupported to leave it out "
                                  "(it is then listed as skipped)")
            skipped.append(Skipped(m.name, Reason(Why.UNSUPPORTED, builder=m.unsupported)))
            gone.add(m.name)
    changed = True
    pending = [(m.artifact, places, node) for m, (places, node) in mapped if m.artifact is not None]
    while changed:
        changed = False
        for a, _, _ in pending:
            if a.name not in gone and (blocked := [r.image for r in a.requires if r.image in gone]):
                skipped.append(Skipped(a.name, Reason(Why.REQUIRES_LEFT_OUT, requires=tuple(blocked))))
                gone.add(a.name)
                changed = True
    kept = [a for a, _, _ in pending if a.name not in gone]
    return kept, skipped


def _check_requires(found: list[tuple[Artifact, Any, Any]]) -> None:
    """project.check_requires over the kept artifacts, its errors at their places in skaffold.yaml."""
    def fail(i: int, j: int | None, message: str, hint: str) -> Exception:
        _, places, node = found[i]
        if j is None:
            error: Exception = places.fail(message, node, "requires", hint=hint)
        else:
            error = places.fail(f"{configs.where_artifact(node)}.requires[{j}]: {message}", node.get("requires"), j,
                                hint=hint)
        return error

    check_requires([a for a, _, _ in found], fail)


def load(path: Path, docs: list[Any], *, default_repo: str | None, env: Mapping[str, str],
         profiles: tuple[str, ...] = (), skip_unsupported: bool = False) -> Project:
    """The Project of a skaffold.yaml and the configs it requires, with `profiles` (else $SKAFFOLD_PROFILE)."""
    repo = _default_repo(default_repo, env)
    named = [p.strip() for text in (*profiles, *([env["SKAFFOLD_PROFILE"]] if not profiles and
                                                 env.get("SKAFFOLD_PROFILE") else []))
             for p in text.split(",") if p.strip()]
    warnings: list[str] = []
    loaded = configs.load_all(path, docs, named, env, warnings)
    mapped: list[tuple[arts.Mapped, Any]] = []
    insecure: list[str] = [x for x in env.get("SKAFFOLD_INSECURE_REGISTRY", "").split(",") if x]
    concurrency = BuilderSettings().concurrency
    unique = artifactspec.Unique()
    for cfg in loaded:
        build = cfg.build
        insecure += cfg.insecure
        concurrency = max(concurrency, cfg.concurrency)
        if build.get("hooks"):
            warnings.append(f"{cfg.places.path.name}: build.hooks are not run by regless; if they make files the "
                            "build reads, run them before regless")
        for i, node in enumerate(build.get("artifacts") or []):
            m = arts.artifact(cfg.places, node, i, root=cfg.root, default_repo=repo, env=env,
                              build_platforms=[str(p) for p in build.get("platforms") or []], deploy_tag=None)
            if (a := m.artifact) is not None and build.get("tagPolicy"):
                tag = tags.policy_tag(build["tagPolicy"], image=m.name, workspace=a.context, env=env,
                                      places=cfg.places, where="build.tagPolicy")
                if tag == tags.INPUT_DIGEST:
                    spec = node.get("docker") or node.get("kaniko") or {}
                    written = str(spec.get("dockerfile") or "Dockerfile")
                    m = dataclasses.replace(m, artifact=dataclasses.replace(a, input_digest=(written, cfg.root)))
                elif tag is not None:  # a policy gives a tag
                    m = dataclasses.replace(m, artifact=dataclasses.replace(a, deploy_tag=tag, tags=(tag,)))
            src = line_of(node)
            unique.add(str(a.ref) if (a := m.artifact) is not None else m.name,
                       artifactspec.Text(m.name, f"build.artifacts[{i}].image",
                                         arts.fail_at(cfg.places, node, "image")),
                       f"{src.path}:{src.line}" if src else str(cfg.places.path))
            warnings += m.warnings
            mapped.append((m, (cfg.places, node)))
    if not mapped:
        raise ConfigError("no artifacts under build.artifacts", path=str(path),
                          hint="regless builds the artifacts of build.artifacts (in this file, its profiles or "
                          "the configs it requires)")
    kept, skipped = _cascade(mapped, skip_unsupported)
    _check_requires([(m.artifact, p, n) for m, (p, n) in mapped if m.artifact is not None and m.artifact in kept])
    warnings += [f"{s.name} left out: {s.reason}" for s in skipped]
    return Project(path=path, root=path.parent, artifacts=tuple(kept),
                   registry=RegistrySettings(insecure=tuple(dict.fromkeys(insecure))),
                   builder=BuilderSettings(concurrency=concurrency), default_repo=repo, warnings=tuple(warnings),
                   skipped=tuple(skipped), kind="skaffold")


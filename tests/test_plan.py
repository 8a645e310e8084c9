"""plan.decide is pure (its tests do no I/O), and pipeline.make computes the plan once, as one frozen value."""

from __future__ import annotations

import pytest

from reglessbuild.index import Result
from reglessbuild.outcomes import Outcome, Why
from reglessbuild.plan import Facts, decide, retag_candidates
from reglessbuild.refs import parse

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
TARGET = parse("reg.example:5000/team/app:" + "a" * 32)


def entry(*refs: str, digest: str = D1) -> Result:
    return Result(digest, refs, "buildah", 0.0, 3.0)


def test_registry_hit_is_cached_even_with_empty_index():
    d = decide(Facts(TARGET, D1))
    assert d.outcome is Outcome.CACHED and d.digest == D1
    assert d.reason.code is Why.FOUND and d.reason.reference == str(TARGET) and str(d.reason) == f"found {TARGET}"


def test_registry_hit_wins_over_a_different_index_digest():
    d = decide(Facts(TARGET, D2, entry("reg.example:5000/team/old:x", digest=D1)))
    assert d.outcome is Outcome.CACHED and d.digest == D2


def test_no_image_no_entry_builds():
    d = decide(Facts(TARGET, None))
    assert d.outcome is Outcome.BUILT and not d.stale and d.reason.code is Why.NO_IMAGE


def test_live_reference_is_retagged_by_digest():
    other = "reg.example:5000/team/old:" + "a" * 32
    d = decide(Facts(TARGET, None, entry(other), {other: D1}))
    assert d.outcome is Outcome.RETAGGED and d.reason.code is Why.SAME_INPUTS and d.reason.reference == other
    assert d.source == parse(other).bare().with_digest(D1)


def test_reference_with_another_digest_is_not_trusted():
    other = "reg.example:5000/team/old:x"
    d = decide(Facts(TARGET, None, entry(other), {other: D2}))
    assert d.outcome is Outcome.BUILT and d.stale


def test_dead_reference_makes_the_entry_stale():
    other = "reg.example:5000/team/old:x"
    d = decide(Facts(TARGET, None, entry(other), {other: None}))
    assert d.outcome is Outcome.BUILT and d.stale and d.reason.code is Why.STALE_ENTRY and "stale" in str(d.reason)


def test_no_cache_builds_even_on_a_hit():
    d = decide(Facts(TARGET, D1, no_cache=True))
    assert d.outcome is Outcome.BUILT


def test_candidates_prefer_same_repository_then_same_registry():
    e = entry("other.example/x/app:1", "reg.example:5000/team/zzz:1", "reg.example:5000/team/app:old", str(TARGET))
    assert retag_candidates(TARGET, e) == [
        "reg.example:5000/team/app:old", "reg.example:5000/team/zzz:1", "other.example/x/app:1"]


def test_one_vocabulary_a_plan_says_what_build_reports():
    """A decision's outcome is the word build's result uses (`built`, never `build`)."""
    assert decide(Facts(TARGET, None)).outcome == "built"
    assert {o.value for o in Outcome} == {"built", "cached", "retagged", "failed", "skipped"}


def test_the_plan_is_computed_once_as_one_frozen_value(tmp_path):
    """pipeline.make: every artifact hashed, checked and decided, in dependency order, read-only; build,
    plan and explain all read this value (over the in-memory fakes: no registry process)."""
    import dataclasses
    import shutil

    from conftest import ROOT
    from fakes import FakeRegistry, fake_digest
    from reglessbuild import config, pipeline
    from reglessbuild.index import Index

    shutil.copytree(ROOT / "fixtures" / "graph", tmp_path / "graph")
    registry = FakeRegistry()
    registry.put(parse("fake.registry/base/busybox:stable"), fake_digest("base"))
    project = config.load(tmp_path / "graph" / "regless.yaml", default_repo="fake.registry/t",
                          env={"REGLESS_BASE_IMAGE": "fake.registry/base/busybox:stable"})
    index = Index.open(tmp_path / "cache")
    try:
        events: list = []
        the_plan = pipeline.make(project, index, registry, events.append, ["c"])  # type: ignore[arg-type]
    finally:
        index.close()
    names = [p.artifact.name for p in the_plan.prepared]
    assert names[-1] == "c" and set(names) == {"a", "b", "c"}  # what c requires comes first
    assert {n: the_plan.decision(n).outcome for n in names} == {n: Outcome.BUILT for n in names}
    assert all(the_plan.decision(n).reason.code is Why.NO_IMAGE for n in names)
    assert set(the_plan.phases) == {"hash", "check", "decide"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        the_plan.prepared = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        the_plan.decisions["c"] = the_plan.decision("a")  # type: ignore[index]
    assert [p.artifact.name for p in the_plan.narrowed(["a", "c"]).prepared] == [n for n in names if n != "b"]

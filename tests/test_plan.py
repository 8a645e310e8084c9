"""plan.decide is pure: these tests do no I/O."""

from __future__ import annotations

from reglessbuild.index import Result
from reglessbuild.plan import Action, Facts, decide, retag_candidates
from reglessbuild.refs import parse

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
TARGET = parse("reg.example:5000/team/app:" + "a" * 32)


def entry(*refs: str, digest: str = D1) -> Result:
    return Result(digest, refs, "buildah", 0.0, 3.0)


def test_registry_hit_is_cached_even_with_empty_index():
    d = decide(Facts(TARGET, D1))
    assert d.action is Action.CACHED and d.digest == D1 and str(TARGET) in d.reason


def test_registry_hit_wins_over_a_different_index_digest():
    d = decide(Facts(TARGET, D2, entry("reg.example:5000/team/old:x", digest=D1)))
    assert d.action is Action.CACHED and d.digest == D2


def test_no_image_no_entry_builds():
    d = decide(Facts(TARGET, None))
    assert d.action is Action.BUILD and not d.stale and "no image" in d.reason


def test_live_reference_is_retagged_by_digest():
    other = "reg.example:5000/team/old:" + "a" * 32
    d = decide(Facts(TARGET, None, entry(other), {other: D1}))
    assert d.action is Action.RETAG
    assert d.source == parse(other).bare().with_digest(D1)


def test_reference_with_another_digest_is_not_trusted():
    other = "reg.example:5000/team/old:x"
    d = decide(Facts(TARGET, None, entry(other), {other: D2}))
    assert d.action is Action.BUILD and d.stale


def test_dead_reference_makes_the_entry_stale():
    other = "reg.example:5000/team/old:x"
    d = decide(Facts(TARGET, None, entry(other), {other: None}))
    assert d.action is Action.BUILD and d.stale and "stale" in d.reason


def test_no_cache_builds_even_on_a_hit():
    d = decide(Facts(TARGET, D1, no_cache=True))
    assert d.action is Action.BUILD


def test_candidates_prefer_same_repository_then_same_registry():
    e = entry("other.example/x/app:1", "reg.example:5000/team/zzz:1", "reg.example:5000/team/app:old", str(TARGET))
    assert retag_candidates(TARGET, e) == [
        "reg.example:5000/team/app:old", "reg.example:5000/team/zzz:1", "other.example/x/app:1"]

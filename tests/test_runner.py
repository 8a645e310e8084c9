"""The orchestration (pipeline.build and its Runner) over the in-memory fakes of tests/fakes.py: order under
`requires`, the concurrency limit, failure isolation, the retag choice, recording only after a verified
push, and cancel. Real config loading, hashing and index; no registry process, no buildah."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from conftest import ROOT
from fakes import FakeBuilder, FakeRegistry, fake_digest
from reglessbuild import config, pipeline
from reglessbuild.index import Index
from reglessbuild.refs import parse

BASE = "fake.registry/base/busybox:stable"


@pytest.fixture
def graph(tmp_path: Path):
    """fixtures/graph (a and b, then c which requires both) against the fakes; returns a runner of it."""
    shutil.copytree(ROOT / "fixtures" / "graph", tmp_path / "graph")
    registry = FakeRegistry()
    registry.put(parse(BASE), fake_digest("base"))
    index = Index.open(tmp_path / "cache")

    def build(repo: str = "fake.registry/t", *, builder: FakeBuilder | None = None, concurrency: int | None = None):
        project = config.load(tmp_path / "graph" / "regless.yaml", default_repo=repo,
                              env={"REGLESS_BASE_IMAGE": BASE})
        project = dataclasses.replace(project, registry=dataclasses.replace(project.registry, records=False))
        if concurrency is not None:
            project = dataclasses.replace(project, builder=dataclasses.replace(project.builder,
                                                                               concurrency=concurrency))
        b = builder or FakeBuilder(registry)
        events: list = []
        report = pipeline.build(project, index, registry, b, events.append)  # type: ignore[arg-type]
        return {r.name: r for r in report.results}, b, events

    yield build, registry, index
    index.close()


def test_requires_order_and_the_required_digest(graph):
    build, registry, _ = graph
    results, b, _ = build()
    assert {n: r.outcome for n, r in results.items()} == {"a": "built", "b": "built", "c": "built"}
    ends = [n for kind, n in b.events if kind == "end"]
    assert b.events.index(("start", "c")) > max(b.events.index(("end", "a")), b.events.index(("end", "b")))
    assert ends[-1] == "c"
    args = dict(b.requests["c"].build_args)
    assert args["A_IMAGE"] == results["a"].reference and args["A_IMAGE"].endswith("@" + results["a"].digest)


@pytest.mark.parametrize("limit", [1, 2])
def test_the_builder_concurrency_limit_holds(graph, limit):
    build, registry, _ = graph
    _, b, _ = build(builder=FakeBuilder(registry, seconds=0.3), concurrency=limit)
    assert b.most_at_once == limit  # a and b may overlap; never more than the limit


def test_a_failure_stops_only_what_requires_it(graph):
    build, registry, index = graph
    results, _, _ = build(builder=FakeBuilder(registry, fail={"a"}))
    assert results["a"].outcome == "failed" and "fake build of a failed" in str(results["a"].error)
    assert results["b"].outcome == "built"
    assert results["c"].outcome == "skipped" and str(results["c"].error) == "requires a, which failed"
    assert index.get(results["a"].hash) is None and index.get(results["b"].hash) is not None


def test_a_rename_is_a_retag_not_a_build(graph):
    build, registry, _ = graph
    first, _, _ = build()
    again, b, _ = build("fake.registry/renamed")
    assert {n: r.outcome for n, r in again.items()} == {"a": "retagged", "b": "retagged", "c": "retagged"}
    assert b.events == []  # nothing built
    assert {r.digest for r in again.values()} == {r.digest for r in first.values()}
    assert sorted(dst.split("/")[1] for _, dst in registry.copies) == ["renamed"] * 3


def test_a_push_the_registry_does_not_serve_is_never_recorded(graph):
    build, registry, index = graph
    registry.lose.add("fake.registry/t/b")
    results, _, _ = build()
    assert results["b"].outcome == "failed" and "the registry does not serve it" in str(results["b"].error)
    assert index.get(results["b"].hash) is None
    assert results["c"].outcome == "skipped"  # c requires b
    assert index.get(results["a"].hash) is not None


def test_a_cancel_records_nothing_more(graph):
    build, registry, index = graph
    with pytest.raises(KeyboardInterrupt):
        build(builder=FakeBuilder(registry, seconds=0.2, interrupt="a"))
    with_hashes, _, _ = build(builder=FakeBuilder(registry, fail={"a", "b"}))  # only to learn the hashes
    assert index.get(with_hashes["a"].hash) is None and index.get(with_hashes["c"].hash) is None


def test_a_restart_checks_and_builds_nothing(graph):
    build, registry, _ = graph
    build()
    calls = registry.calls
    again, b, _ = build()
    assert {r.outcome for r in again.values()} == {"cached"} and b.events == []
    assert registry.calls - calls == 1 + 3  # the base, then one check per artifact

"""The split of a build over CI jobs (shares.py, pure) and the registry wait (waiting.py) on a clock of its own."""

from __future__ import annotations

import itertools
import random

import pytest

from reglessbuild import shares
from reglessbuild.errors import InputError
from reglessbuild.events import Event
from reglessbuild.refs import parse
from reglessbuild.shares import Work
from reglessbuild.waiting import Pace, WaitTimeout, wait_for

GRAPH = [Work("base", (), 10.0), Work("lib", ("base",), 5.0), Work("app", ("lib",), 5.0),
         Work("web", (), 8.0), Work("api", ("base",), 7.0), Work("cli", (), 1.0),
         Work("docs", (), 2.0), Work("job", ("api", "lib"), 3.0), Work("tool", ("cached-thing",), 4.0)]


def test_waves_follow_requires_and_ignore_requirements_outside_the_work():
    assert shares.waves(GRAPH) == (("base", "cli", "docs", "tool", "web"), ("api", "lib"), ("app", "job"))
    assert shares.waves([]) == ()


def test_split_is_at_most_jobs_shares_each_artifact_once_and_balanced():
    s = shares.split(GRAPH, 3)
    assert s.total == 3
    names = [n for sh in s.shares for n in sh.artifacts]
    assert sorted(names) == sorted(w.name for w in GRAPH)
    costs = [sh.cost for sh in s.shares]
    assert sum(costs) == pytest.approx(45.0)
    # list scheduling aims at the earliest end of the last share: here the longest chain of requires,
    # base -> api -> job (20 s), which nothing can beat; a share idle while it waits counts as busy
    assert max(costs) <= 20.0
    # within a share, an artifact comes after what it requires
    for sh in s.shares:
        for later, w in enumerate(sh.artifacts):
            reqs = next(x for x in GRAPH if x.name == w).requires
            assert all(sh.artifacts.index(r) < later for r in reqs if r in sh.artifacts)


def test_independent_artifacts_are_balanced_within_the_costliest_one():
    items = [Work(f"i{n}", (), float(c)) for n, c in enumerate([9, 7, 6, 5, 5, 4, 3, 2, 2, 1])]
    costs = [sh.cost for sh in shares.split(items, 3).shares]
    assert sum(costs) == 44.0 and max(costs) - min(costs) <= 9.0 and max(costs) <= 44 / 3 + 9


def test_split_is_the_same_whatever_the_order_of_the_items():
    first = shares.split(GRAPH, 3)
    rng = random.Random(7)
    for _ in range(20):
        items = GRAPH[:]
        rng.shuffle(items)
        assert shares.split(items, 3) == first


def test_a_chain_stays_in_one_share_and_empty_shares_are_dropped():
    chain = [Work("a", (), 1.0), Work("b", ("a",), 1.0), Work("c", ("b",), 1.0)]
    s = shares.split(chain, 3)
    assert s.total == 1 and s.shares[0].artifacts == ("a", "b", "c")
    assert shares.split([], 4).shares == (shares.Share(1, (), 0.0),)  # a matrix always has a job


def test_more_jobs_than_artifacts():
    s = shares.split([Work("x", (), 3.0), Work("y", (), 3.0)], 8)
    assert s.total == 2 and {s.share_of("x"), s.share_of("y")} == {1, 2}


def test_matrices_for_github_and_gitlab():
    s = shares.split(GRAPH, 2)
    gh = shares.matrix(s, "github")
    assert [e["share"] for e in gh["include"]] == ["1/2", "2/2"]
    assert set(gh["include"][0]["artifacts"].split()) == set(s.shares[0].artifacts)
    gl = shares.matrix(s, "gitlab")
    assert gl == [{"SHARE": "1/2", "ARTIFACTS": " ".join(s.shares[0].artifacts)},
                  {"SHARE": "2/2", "ARTIFACTS": " ".join(s.shares[1].artifacts)}]
    with pytest.raises(InputError):
        shares.matrix(s, "buildkite")


def test_the_split_round_trips_through_the_plan_json():
    s = shares.split(GRAPH, 3)
    assert shares.from_json(shares.to_json(s)).shares == tuple(
        shares.Share(x.number, x.artifacts, x.cost) for x in s.shares)
    for bad in ([], [{"share": "2/2", "artifacts": []}], [{"share": "1/1", "artifacts": "ab"}, 3],
                [{"share": "1/2", "artifacts": ["a"]}, {"share": "2/2", "artifacts": ["a"]}]):
        with pytest.raises(InputError):
            shares.from_json(bad)


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0", "-1/2", "1/3/4", ""])
def test_bad_share_is_an_input_error(text):
    with pytest.raises(InputError) as e:
        shares.parse_share(text)
    assert e.value.exit_code == 2 and "--share" in str(e.value)


def test_good_share():
    assert shares.parse_share("2/3") == (2, 3)
    assert shares.parse_share(" 1 / 1 ") == (1, 1)
    with pytest.raises(InputError):
        shares.split(GRAPH, 0)


class Clock:
    """A clock of the test's own: sleep advances it (no real waiting in a unit test)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


REF = parse("127.0.0.1:5000/t/base:0123456789abcdef0123456789abcdef")


def test_wait_polls_with_growing_pauses_until_the_image_comes():
    clock, events = Clock(), []
    answers = itertools.chain([None] * 6, ["sha256:" + "a" * 64])
    got = wait_for(lambda ref: next(answers), REF, "base", "2/3", timeout=600, emit=events.append,
                   pace=Pace(1.0, 8.0), clock=clock, sleep=clock.sleep)
    assert got == "sha256:" + "a" * 64
    assert len(clock.slept) == 6
    first = clock.slept[:4]  # 1, 2, 4, 8 s less up to 20% jitter: doubling...
    assert all(b > a for a, b in zip(first, first[1:], strict=False)) and first[0] >= 0.8
    assert max(clock.slept) <= 8.0 and min(clock.slept[3:]) >= 6.4  # ...up to its cap
    waits = [e.message for e in events if e.kind == "wait"]
    assert waits[0] == "waiting for base (share 2/3) 0s"
    assert waits[3].startswith("waiting for base (share 2/3) ") and waits[3] != waits[2]
    assert waits[-1].startswith("base is in the registry after ")


def test_wait_gives_up_at_the_timeout_naming_the_artifact_and_its_share():
    clock, events = Clock(), []
    with pytest.raises(WaitTimeout) as e:
        wait_for(lambda ref: None, REF, "base", "2/3", timeout=60, emit=events.append, clock=clock,
                 sleep=clock.sleep)
    assert e.value.exit_code == 3
    assert "base" in str(e.value) and "share 2/3" in str(e.value) and "1 min" in str(e.value)
    assert 60 <= clock.now - 100.0 <= 60.001  # the last pause is cut to what was left
    assert all(isinstance(ev, Event) for ev in events)


def test_an_image_already_there_is_no_wait():
    events: list[Event] = []
    assert wait_for(lambda ref: "sha256:" + "b" * 64, REF, "base", "1/2", timeout=5, emit=events.append) \
        == "sha256:" + "b" * 64
    assert events == [] or all("waiting" not in e.message for e in events)

"""The split of a build over CI jobs: waves by `requires`, shares balanced by cost, CI matrices.

Pure: the same work items give the same waves, shares and matrix on every machine, so a plan job and
the build jobs of a CI matrix agree on who builds what without talking to each other (the registry is
where they meet: waiting.py). Nothing here does I/O; fanout.py gathers the items.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import InputError

MATRIX_KINDS = ("github", "gitlab")


@dataclass(frozen=True)
class Work:
    """One artifact to build: its name, the names it requires (others are ignored), its estimated cost."""

    name: str
    requires: tuple[str, ...]
    cost: float  # estimated seconds of building it


@dataclass(frozen=True)
class Share:
    """One CI job's part of the build: the artifacts it builds, in an order their `requires` allow."""

    number: int  # 1-based
    artifacts: tuple[str, ...]  # in the order they can be built
    cost: float  # the sum of its artifacts' costs


@dataclass(frozen=True)
class Split:
    """At most `jobs` non-empty shares (always at least one, possibly empty, so a matrix has a job)."""

    shares: tuple[Share, ...]

    @property
    def total(self) -> int:
        """N, the number of shares (jobs) in the split."""
        return len(self.shares)

    def share_of(self, name: str) -> int | None:
        """The number of the share that builds `name`, or None when no share does (nothing to build)."""
        for s in self.shares:
            if name in s.artifacts:
                return s.number
        return None

    def label(self, number: int) -> str:
        """`K/N`, as --share takes it."""
        return f"{number}/{self.total}"


def parse_share(text: str) -> tuple[int, int]:
    """`K/N` (1 <= K <= N) as (K, N); anything else is an input error (exit 2)."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m:
        raise InputError(f"--share {text!r} is not K/N", hint="e.g. --share 2/3: the second of three shares")
    k, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 1 <= k <= n:
        raise InputError(f"--share {text}: K must be between 1 and N (and N at least 1)",
                         hint="shares are numbered from 1: --share 1/3, 2/3, 3/3")
    return k, n


def _depths(items: list[Work]) -> dict[str, int]:
    """Wave number of each item: 0 without a requirement among the items, else 1 + its deepest one's."""
    by_name = {w.name: w for w in items}
    depth: dict[str, int] = {}

    def of(name: str, seen: tuple[str, ...] = ()) -> int:
        if name in depth:
            return depth[name]
        if name in seen:  # config.py refuses cycles; never loop here anyway
            raise InputError(f"requires cycle through {name}")
        reqs = [r for r in by_name[name].requires if r in by_name]
        depth[name] = 1 + max((of(r, (*seen, name)) for r in reqs), default=-1)
        return depth[name]

    for w in items:
        of(w.name)
    return depth


def waves(items: Iterable[Work]) -> tuple[tuple[str, ...], ...]:
    """The items in waves: each wave needs only earlier waves (requires outside the items are done)."""
    items = list(items)
    depth = _depths(items)
    count = max(depth.values(), default=-1) + 1
    return tuple(tuple(sorted(n for n, d in depth.items() if d == i)) for i in range(count))


def split(items: Iterable[Work], jobs: int) -> Split:
    """At most `jobs` shares balanced by cost, requires respected: list scheduling in wave order, each
    item (most costly first within a wave) to the share where it would finish first, counting the wait
    for its requirements; a tie goes to a share that holds a requirement (no wait across jobs), then to
    the lowest number. Shares left empty are dropped and the rest renumbered."""
    if jobs < 1:
        raise InputError(f"--jobs {jobs}: give 1 or more")
    items = list(items)
    by_name = {w.name: w for w in items}
    depth = _depths(items)
    order = sorted(items, key=lambda w: (depth[w.name], -w.cost, w.name))
    free = [0.0] * jobs
    held: list[list[str]] = [[] for _ in range(jobs)]
    finish: dict[str, float] = {}
    where: dict[str, int] = {}
    for w in order:
        reqs = [r for r in w.requires if r in by_name]
        ready = max((finish[r] for r in reqs), default=0.0)
        best = min(range(jobs), key=lambda s: (round(max(free[s], ready) + w.cost, 6),
                                              0 if any(where[r] == s for r in reqs) else 1, s))
        finish[w.name] = free[best] = max(free[best], ready) + w.cost
        where[w.name] = best
        held[best].append(w.name)
    used = [h for h in held if h]
    shares = tuple(Share(i + 1, tuple(h), round(sum(by_name[n].cost for n in h), 3)) for i, h in enumerate(used))
    return Split(shares or (Share(1, (), 0.0),))


def matrix(s: Split, kind: str) -> Any:
    """What the CI system takes: GitHub Actions' `strategy.matrix` object (one `include` entry per share),
    or GitLab's `parallel:matrix` list (one entry per share). `share` is what `regless build --share`
    takes; `artifacts` is for the job's name."""
    if kind == "github":
        return {"include": [{"share": s.label(x.number), "artifacts": " ".join(x.artifacts) or "-"}
                            for x in s.shares]}
    if kind == "gitlab":
        return [{"SHARE": s.label(x.number), "ARTIFACTS": " ".join(x.artifacts) or "-"} for x in s.shares]
    raise InputError(f"--matrix {kind!r}: give one of {', '.join(MATRIX_KINDS)}")


def to_json(s: Split) -> list[dict[str, Any]]:
    """The split as the plan's JSON writes it (`fanout.shares`); from_json reads it back."""
    return [{"share": s.label(x.number), "artifacts": list(x.artifacts), "cost": x.cost} for x in s.shares]


def from_json(rows: Any) -> Split:
    """The split a plan saved (`regless plan --save`), checked for shape: numbered 1..N, no artifact twice."""
    try:
        shares: list[Share] = []
        seen: set[str] = set()
        for i, row in enumerate(rows):
            k, n = parse_share(row["share"])
            names = tuple(str(a) for a in row["artifacts"])
            if k != i + 1 or n != len(rows) or seen & set(names):
                raise ValueError(row["share"])
            seen |= set(names)
            shares.append(Share(k, names, float(row.get("cost", 0.0))))
    except (KeyError, TypeError, ValueError, InputError) as exc:
        raise InputError("the plan's fanout.shares is not a list of shares 1/N..N/N, each artifact in one",
                         hint="write it with regless plan --save FILE") from exc
    if not shares:
        raise InputError("the plan's fanout.shares is empty", hint="write it with regless plan --save FILE")
    return Split(tuple(shares))

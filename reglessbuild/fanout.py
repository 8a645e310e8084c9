"""Fan-out over CI jobs: the work of `regless plan --jobs N --matrix ...` and the choice of
`regless build --share K/N`.

It gathers, from a run's prepared artifacts and decisions, the artifacts to build with a cost estimate
(shares.Work), and turns a split into what one share does (waiting.Selection). The split itself is
pure (shares.py); this module reads the index (last build seconds) and the files (input size).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import plan, shares
from .errors import InputError
from .index import Index
from .outcomes import Outcome
from .run import Prepared
from .waiting import Selection

# a build estimated from its inputs alone: a fixed start (pull, container set-up, push) and a rate
START_SECONDS, BYTES_PER_SECOND = 2.0, 20e6


@dataclass(frozen=True)
class Cost:
    """An artifact's estimated build seconds and where the figure came from, which the plan shows so that a
    user can tell a measured cost from a guess."""

    seconds: float
    source: str  # "index" (the artifact's last build here), "registry record" or "input size"


def cost(p: Prepared, index: Index | None, recorded: float | None = None) -> Cost:
    """The last build seconds the index knows for the artifact (its last inputs' hash), else those of the
    inputs record of its previous image in the registry (`recorded`, found by the plan), else an estimate
    from the size of its input files (alone when there is no index: the same on every runner)."""
    if index is None:
        return _by_size(p)
    last = index.last_inputs(str(p.artifact.ref))
    entry = index.get(last["hash"]) if last and last.get("hash") else None
    if entry is not None and entry.build_seconds > 0:
        return Cost(round(entry.build_seconds, 1), "index")
    if isinstance(recorded, (int, float)) and not isinstance(recorded, bool) and recorded > 0:
        return Cost(round(float(recorded), 1), "registry record")
    return _by_size(p)


def _by_size(p: Prepared) -> Cost:
    size = 0
    for f in p.inputs.files:
        try:
            size += os.lstat(p.artifact.context / f.path).st_size
        except OSError:
            pass
    return Cost(round(START_SECONDS + size / BYTES_PER_SECOND, 1), "input size")


@dataclass(frozen=True)
class Fanout:
    """The plan's answer to `--jobs N`: the build waves `requires` imposes, the split into N shares, and the
    costs the split balanced."""

    waves: tuple[tuple[str, ...], ...]
    split: shares.Split
    costs: dict[str, Cost]

    def to_json(self, jobs: int) -> dict[str, Any]:
        """The plan's `fanout` object (docs/json.md), which `regless build --plan FILE` reads back."""
        return {"jobs": jobs, "waves": [list(w) for w in self.waves], "shares": shares.to_json(self.split),
                "costs": {n: {"seconds": c.seconds, "from": c.source} for n, c in self.costs.items()}}


def work(prepared: list[Prepared], decisions: dict[str, plan.Decision], index: Index,
         recorded: dict[str, float | None] | None = None) -> tuple[list[shares.Work], dict[str, Cost]]:
    """The artifacts to build (a retag is left to whoever needs it: it costs a copy), with their costs;
    `recorded`: build seconds from inputs records in the registry, by artifact."""
    todo = [p for p in prepared if decisions[p.artifact.name].outcome is Outcome.BUILT]
    costs = {p.artifact.name: cost(p, index, (recorded or {}).get(p.artifact.name)) for p in todo}
    items = [shares.Work(p.artifact.name, tuple(r.image for r in p.artifact.requires), costs[p.artifact.name].seconds)
             for p in todo]
    return items, costs


def fanout(prepared: list[Prepared], decisions: dict[str, plan.Decision], index: Index, jobs: int,
           recorded: dict[str, float | None] | None = None) -> Fanout:
    """The artifacts to build, in waves and split over `jobs` shares by cost (see work for `recorded`)."""
    items, costs = work(prepared, decisions, index, recorded)
    return Fanout(shares.waves(items), shares.split(items, jobs), costs)


def load_split(path: Path) -> shares.Split:
    """The split saved by `regless plan --save FILE`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = data["fanout"]["shares"]
    except OSError as exc:
        raise InputError(f"--plan {path}: {exc.strerror}", hint="give the file regless plan --save wrote") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"--plan {path}: not a plan with fanout.shares",
                         hint="write it with regless plan --save FILE") from exc
    return shares.from_json(rows)


def check(share: tuple[int, int], saved: shares.Split) -> None:
    """--share K/N must be one of the plan's shares."""
    k, n = share
    if saved.total != n:
        raise InputError(f"--share {k}/{n}, but the plan has {saved.total} share{'s' * (saved.total != 1)}",
                         hint="take --share from the plan's matrix")


def select(share: tuple[int, int], prepared: list[Prepared], *, saved: shares.Split | None,
           timeout: float) -> Selection:
    """What share K of N does: its own artifacts and what they require. A requirement another share builds
    is waited for; one no share builds (cached, a retag, or new since the plan) is done here. The split is
    the plan's (`saved`), else worked out here from the inputs alone: over every artifact, cached or not,
    by input size, so that runners started at different times, with different caches, agree."""
    k, n = share
    if saved is not None:
        check(share, saved)
        split = saved
    else:
        # every artifact, by input size alone: what is cached now, or built meanwhile by a share that
        # started earlier, and what this runner's index knows must not change the split (runners agree)
        items = [shares.Work(p.artifact.name, tuple(r.image for r in p.artifact.requires), cost(p, None).seconds)
                 for p in prepared]
        split = shares.split(items, n)
    by_name = {p.artifact.name: p for p in prepared}
    mine = [name for name in by_name if split.share_of(name) == k]
    keep: set[str] = set()
    wait: dict[str, str] = {}

    def add(name: str) -> None:
        if name in keep:
            return
        keep.add(name)
        other = split.share_of(name)
        if other is not None and other != k:
            wait[name] = split.label(other)
            return  # what it requires is the other share's business
        for r in by_name[name].artifact.requires:
            add(r.image)

    for name in mine:
        add(name)
    return Selection(frozenset(keep), wait, timeout)

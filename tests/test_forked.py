"""forked.fork_map: the per-file loop of hashing split over forked children."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from reglessbuild import forked


def test_results_come_back_in_chunk_order_with_every_note():
    notes: list[tuple[int, int]] = []

    def work(chunk, note):
        for x in chunk:
            note(x)
        return [x * x for x in chunk]

    out = forked.fork_map(work, [[1, 2], [3], [4, 5, 6]], lambda i, n: notes.append((i, n)))
    assert out == [[1, 4], [9], [16, 25, 36]]
    assert sorted(notes) == [(0, 1), (0, 2), (1, 3), (2, 4), (2, 5), (2, 6)]


def test_the_first_chunk_runs_in_this_process_and_the_others_do_not():
    out = forked.fork_map(lambda chunk, note: os.getpid(), [None, None, None])
    assert out[0] == os.getpid() and len({*out}) == 3


def test_an_error_in_a_child_is_raised_here():
    def work(chunk, note):
        if chunk == "bad":
            raise FileNotFoundError(2, "No such file or directory", "/x/y")
        return chunk

    with pytest.raises(FileNotFoundError, match="/x/y"):
        forked.fork_map(work, ["good", "bad"])


def test_a_childs_failure_stops_the_work_here_at_its_next_note():
    done_here = []

    def work(chunk, note):
        if chunk:
            raise ValueError("child failed")
        for i in range(1000):  # ten seconds, unless a note brings the child's failure
            note(i)
            done_here.append(i)
            time.sleep(0.01)
        return chunk

    with pytest.raises(ValueError, match="child failed"):
        forked.fork_map(work, [0, 1])
    assert len(done_here) < 1000  # stopped early, not after its whole share


def test_an_error_that_cannot_cross_the_pipe_comes_as_text():
    class Local(Exception):  # defined in a function: pickle cannot find it by name
        pass

    def work(chunk, note):
        if chunk:
            raise Local("only here")
        return chunk

    with pytest.raises(RuntimeError, match="Local: only here"):
        forked.fork_map(work, [0, 1])


def test_a_child_that_dies_without_an_answer():
    def work(chunk, note):
        if chunk:
            os.kill(os.getpid(), signal.SIGKILL)
        return chunk

    with pytest.raises(forked.ChildDied, match="ended without an answer"):
        forked.fork_map(work, [0, 1])


def test_an_error_here_kills_and_reaps_the_children(tmp_path: Path):
    def work(chunk, note):
        if chunk == 0:
            while len(list(tmp_path.iterdir())) < 2:  # both children have started
                time.sleep(0.01)
            raise ValueError("stop")
        (tmp_path / str(os.getpid())).touch()
        time.sleep(60)
        return chunk

    with pytest.raises(ValueError, match="stop"):
        forked.fork_map(work, [0, 1, 2])
    pids = [int(p.name) for p in tmp_path.iterdir()]
    assert len(pids) == 2
    for pid in pids:  # reaped: not even a zombie is left
        assert not Path(f"/proc/{pid}").exists()

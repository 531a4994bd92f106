"""macnss_auth.testing.races: calls really run at once, and every outcome comes back in order.

For threads and for processes; a process that dies, hangs before the start or
returns what cannot be pickled is an outcome too, never a hung test.
"""

from __future__ import annotations

import functools
import multiprocessing
import threading

from macnss_auth.testing.races import WorkerFailed, outcome_name, race_processes, race_threads
from tests._race_targets import after_start, before_start


def test_threads_run_at_once_and_outcomes_keep_their_order() -> None:
    # Each call waits for all the others: only calls running at the same time get past.
    together = threading.Barrier(4, timeout=30)

    def call(n: int) -> int:
        together.wait()
        if n == 2:
            raise ValueError(n)
        return n * 10

    outcomes = race_threads([functools.partial(call, n) for n in range(4)])
    assert outcomes[:2] == [0, 10]
    assert isinstance(outcomes[2], ValueError)
    assert outcomes[3] == 30
    assert [outcome_name(o) for o in outcomes] == ["ok", "ok", "ValueError", "ok"]


def test_a_none_result_is_an_outcome_too() -> None:
    assert race_threads([lambda: None, lambda: None]) == [None, None]


def test_processes_run_at_once_and_every_outcome_comes_back_in_order() -> None:
    behaviours = ["ok", "raise", "die", "unpicklable", "raise-keyword-only", "ok"]
    together = multiprocessing.get_context("spawn").Barrier(len(behaviours))
    outcomes = race_processes(after_start, [(b, together) for b in behaviours], timeout=90)
    first, raised, died, unpicklable, keyword_only, last = outcomes
    assert isinstance(first, tuple)
    assert isinstance(last, tuple)
    assert first[0] == last[0] == "ok"
    assert first[1] != last[1]  # two processes, not one
    assert isinstance(raised, ValueError)
    assert raised.args == ("raise",)
    assert isinstance(died, WorkerFailed)
    assert died.exitcode == 3
    assert isinstance(unpicklable, WorkerFailed)
    assert "unpicklable" in str(unpicklable)
    assert isinstance(keyword_only, WorkerFailed)
    assert "KeywordOnlyError" in str(keyword_only)
    assert [outcome_name(o) for o in outcomes] == [
        "ok",
        "ValueError",
        "WorkerFailed",
        "WorkerFailed",
        "WorkerFailed",
        "ok",
    ]


def test_a_process_failing_before_start_releases_the_others() -> None:
    # The failed process aborts the barrier: the others see BrokenBarrierError at
    # once instead of waiting out the timeout (and being reported as hung).
    outcomes = race_processes(before_start, [("raise",), ("ok",), ("skip",)], timeout=60)
    assert isinstance(outcomes[0], KeyError)
    assert isinstance(outcomes[1], threading.BrokenBarrierError)
    assert isinstance(outcomes[2], WorkerFailed)
    assert "without calling start()" in str(outcomes[2])

"""macnss_auth.testing.races: calls really run at once, and every outcome comes back in order."""

from __future__ import annotations

import functools
import threading

from macnss_auth.testing.races import outcome_name, race_threads


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

"""One race helper: calls released together, in threads or in processes.

The library's tests, and the store contract (:mod:`.store_contract`), race
through it; so can yours.

:func:`race_threads` runs callables in threads held at a barrier and returns
each one's result or exception, in order, so a test asserts on every
outcome (an unexpected exception is an outcome too, not a lost thread).
:class:`ProcessPool` keeps long-lived worker processes (spawned: nothing is
inherited but the arguments) that each take the same job from their own
queue, meet at a barrier, run it, and report ``(rep, outcome)``.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

__all__ = ["ProcessPool", "outcome_name", "race_threads"]

T = TypeVar("T")


def race_threads(calls: Sequence[Callable[[], T]]) -> list[T | BaseException]:
    """Run every call in its own thread, all released at once; results or exceptions, in order."""
    barrier = threading.Barrier(len(calls))
    unset = object()
    results: list[Any] = [unset] * len(calls)

    def run(n: int) -> None:
        try:
            barrier.wait()
            results[n] = calls[n]()
        except BaseException as exc:  # noqa: BLE001 (handed to the test thread)
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r is not unset for r in results)
    return results


def outcome_name(outcome: object, ok: str = "ok") -> str:
    """``ok`` for a result, the exception's class name for an exception."""
    return type(outcome).__name__ if isinstance(outcome, BaseException) else ok


class ProcessPool:
    """Long-lived worker processes released together by a barrier for each job.

    ``target(*args, barrier, queue, results)`` runs in each process: it takes
    jobs ``(rep, ...)`` from ``queue`` until ``("stop",)``, waits at
    ``barrier``, runs the job and puts ``(rep, outcome)`` on ``results``.
    """

    def __init__(self, target: Callable[..., None], args: tuple[Any, ...], workers: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.workers = workers
        self.barrier = context.Barrier(workers)
        self.results: Any = context.Queue()
        self.queues: list[Any] = [context.Queue() for _ in range(workers)]
        self.processes = [
            context.Process(
                target=target, args=(*args, self.barrier, queue, self.results), daemon=True
            )
            for queue in self.queues
        ]
        for process in self.processes:
            process.start()

    def race(self, rep: int, *job: object) -> Counter[str]:
        """Every worker runs ``job`` at once; how many times each outcome came back."""
        for queue in self.queues:
            queue.put((rep, *job))
        outcomes: Counter[str] = Counter()
        for _ in range(self.workers):
            got, outcome = self.results.get(timeout=60)
            assert got == rep
            outcomes[outcome] += 1
        return outcomes

    def close(self) -> None:
        """Stop the workers (killing any that do not stop within 30 s)."""
        for queue in self.queues:
            queue.put(("stop",))
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()

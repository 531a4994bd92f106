"""One race helper: calls released together, in threads or in processes.

The library's tests, and the store contract (:mod:`.store_contract`), race
through it; so can yours.

:func:`race_threads` runs callables in threads held at a barrier and returns
each one's result or exception, in order, so a test asserts on every
outcome (an unexpected exception is an outcome too, not a lost thread).
:class:`ProcessPool` keeps long-lived worker processes (spawned: nothing is
inherited but the arguments) that each take the same job from their own
queue, meet at a barrier, run it, and report ``(rep, outcome)``.
:func:`race_processes` is the one-shot form: one spawned process per argument
tuple, each doing its own setup (opening a store or a log) and then calling
``start()``, where all of them meet; each one's return value or exception comes
back in order, and a process that dies without reporting is an outcome too.
"""

from __future__ import annotations

import multiprocessing
import pickle
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from queue import Empty
from typing import Any, TypeVar

__all__ = ["ProcessPool", "WorkerFailed", "outcome_name", "race_processes", "race_threads"]

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


class WorkerFailed(Exception):
    """A racing process that died, hung, or raised something that cannot cross processes.

    Attributes:
        exitcode: the process's exit code (``None`` while it was still running).
    """

    def __init__(self, message: str, *, exitcode: int | None) -> None:
        super().__init__(message)
        self.exitcode = exitcode

    def __reduce__(self) -> tuple[Any, ...]:
        return (_worker_failed, (str(self), self.exitcode))


def _worker_failed(message: str, exitcode: int | None) -> WorkerFailed:
    return WorkerFailed(message, exitcode=exitcode)


def _portable(outcome: object) -> bytes:
    """``outcome`` pickled, or a :class:`WorkerFailed` naming it when it cannot be.

    The pickle is read back here: exceptions whose constructor takes other
    arguments than ``args`` pickle but do not unpickle.
    """
    try:
        data = pickle.dumps(outcome)
        pickle.loads(data)  # noqa: S301 (our own pickle)
    except Exception as exc:  # noqa: BLE001 (anything unpicklable is reported, not lost)
        return pickle.dumps(WorkerFailed(f"unpicklable outcome {outcome!r}: {exc!r}", exitcode=0))
    return data


def _race_process(  # pragma: no cover (runs in the spawned child)
    job: tuple[int, Callable[..., object], tuple[Any, ...], float], barrier: Any, results: Any
) -> None:
    index, target, args, timeout = job
    started = False

    def start() -> None:
        nonlocal started
        started = True
        barrier.wait(timeout)

    try:
        outcome: object = target(*args, start)
        if not started:
            raise WorkerFailed("the target returned without calling start()", exitcode=0)  # noqa: TRY301 (reported like any failure)
    except BaseException as exc:  # noqa: BLE001 (handed to the parent)
        if not started:
            barrier.abort()  # the others would wait for this one until the timeout
        outcome = exc
    results.put((index, _portable(outcome)))


def race_processes(
    target: Callable[..., T],
    args: Sequence[tuple[Any, ...]],
    *,
    timeout: float = 120.0,
) -> list[T | BaseException]:
    """Run ``target(*a, start)`` in one spawned process per ``a`` in ``args``, released together.

    ``target`` must be importable by a fresh interpreter (a module-level
    function) and its arguments and result picklable. It does its setup, then
    calls ``start()``: that returns in every process at once (or raises
    ``BrokenBarrierError`` when another process failed before reaching it).

    Returns:
        Each process's result or exception, in the order of ``args``. A process
        that exits with a non-zero code, or does not report within ``timeout``
        seconds, yields a :class:`WorkerFailed`.
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(args))
    results: Any = context.Queue()
    processes = [
        context.Process(
            target=_race_process,
            args=((n, target, tuple(a), timeout), barrier, results),
            daemon=True,
        )
        for n, a in enumerate(args)
    ]
    for process in processes:
        process.start()
    reported: dict[int, Any] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(reported) < len(processes) and time.monotonic() < deadline:
            try:
                index, payload = results.get(timeout=0.5)
            except Empty:
                # A process that exited without reporting will never report.
                silent = [
                    n for n, p in enumerate(processes) if n not in reported and not p.is_alive()
                ]
                if silent and results.empty():
                    for n in silent:
                        reported[n] = pickle.dumps(
                            WorkerFailed(
                                f"process {n} died without reporting",
                                exitcode=processes[n].exitcode,
                            )
                        )
                continue
            reported[index] = payload
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
    outcomes: list[Any] = []
    for n, process in enumerate(processes):
        if n not in reported:
            outcomes.append(
                WorkerFailed(
                    f"process {n} did not report in {timeout} s", exitcode=process.exitcode
                )
            )
        elif process.exitcode != 0:
            outcomes.append(
                WorkerFailed(
                    f"process {n} exited with {process.exitcode}", exitcode=process.exitcode
                )
            )
        else:
            outcomes.append(pickle.loads(reported[n]))  # noqa: S301 (our own child's pickle)
    return outcomes

"""How a delivery runs on behalf of ``begin``: inline (padded) or in worker threads.

A delivery to nobody (an unknown subject) must cost ``begin`` what a real
one costs, so ``begin`` never calls a channel itself: it hands a job to a
:class:`Dispatcher`. :class:`BackgroundDispatcher` (the default) returns at
once, known subject or not; :class:`InlineDispatcher` delivers first and
then pads ``begin`` to a minimum duration (for the CLI and tests).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from macnss_auth.delivery.base import DeliveryError
from macnss_auth.errors import ConfigurationError

__all__ = [
    "BackgroundDispatcher",
    "CodeNotDelivered",
    "Dispatcher",
    "InlineDispatcher",
    "nothing",
]

# The package's logger, as before the split: operators' logging settings keep working.
_log = logging.getLogger("macnss_auth.otp.oob")


class CodeNotDelivered(DeliveryError):
    """The code could not be delivered; it was burnt and can never be used.

    Attributes:
        challenge_id: the challenge whose code was lost.
        retryable: whether asking for a new code later may succeed.
    """

    def __init__(self, message: str, *, challenge_id: str, retryable: bool) -> None:
        super().__init__(message, retryable=retryable)
        self.challenge_id = challenge_id


class Dispatcher(Protocol):
    """Runs a delivery job on behalf of ``begin`` (see the module docstring)."""

    def dispatch(self, job: Callable[[], None], *, started: float) -> None:
        """Run or schedule ``job``; ``started`` is ``begin``'s monotonic start time."""
        ...


class InlineDispatcher:
    """Delivers before ``begin`` returns, then pads ``begin`` to ``min_duration`` seconds.

    Delivery failures propagate (as :class:`CodeNotDelivered`) after the pad.
    """

    def __init__(
        self,
        *,
        min_duration: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if min_duration < 0:
            raise ConfigurationError("min_duration must be >= 0")
        self.min_duration = min_duration
        self._sleep = sleep
        self._monotonic = monotonic

    def dispatch(self, job: Callable[[], None], *, started: float) -> None:
        try:
            job()
        finally:
            rest = self.min_duration - (self._monotonic() - started)
            if rest > 0:
                self._sleep(rest)

    def __repr__(self) -> str:
        return f"InlineDispatcher(min_duration={self.min_duration})"


class BackgroundDispatcher:
    """Delivers in worker threads; ``begin`` returns without waiting.

    Call :meth:`close` (or use it as a context manager) to wait for pending
    deliveries at shutdown; :meth:`drain` waits without closing.
    """

    def __init__(self, *, max_workers: int = 4) -> None:
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="macnss-auth-delivery"
        )
        self._lock = threading.Lock()
        self._pending: set[Future[None]] = set()

    def dispatch(self, job: Callable[[], None], *, started: float) -> None:
        future = self._executor.submit(job)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)
        error = future.exception()
        if isinstance(error, CodeNotDelivered):
            # Already burnt and audited by the job; log for operators only.
            _log.warning(
                "code for challenge %s not delivered (retryable=%s)",
                error.challenge_id,
                error.retryable,
            )
        elif error is not None:
            _log.error("delivery job failed: %s", type(error).__name__)

    def drain(self, timeout: float | None = None) -> None:
        """Wait until every delivery scheduled so far has finished."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                pending = list(self._pending)
            if not pending:
                return
            for future in pending:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                future.exception(timeout=remaining)

    def close(self) -> None:
        """Finish pending deliveries and stop the workers."""
        self._executor.shutdown(wait=True)

    def __enter__(self) -> BackgroundDispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return "BackgroundDispatcher()"


def nothing() -> None:
    """The delivery to nobody: unknown subjects get no message."""

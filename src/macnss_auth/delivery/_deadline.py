"""One overall deadline per delivery attempt, on top of per-read socket timeouts.

A socket timeout bounds one read. A server that sends a ``220-``
continuation line, or one byte of a PDU, just inside every timeout never
trips it, and would hold the caller (and the code it carries) for as long as
it likes. So each network channel arms a :class:`Watchdog` for the whole
attempt: when it fires, it shuts the connection's socket down, which wakes
any blocked read or write at once; the channel then reports
:class:`~macnss_auth.delivery.base.DeliveryTimeout`.

:func:`~macnss_auth.delivery.base.deliver` lends its remaining retry
deadline to the attempt through :func:`attempt_seconds`, so the retry
deadline bounds the total and not only the pauses between tries. A caller
that tries several channels in turn wraps them all in one
:func:`retry_budget`: budgets nest by narrowing, so the whole sequence ends
within it.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import socket
import threading
import time
from collections.abc import Iterator

__all__ = ["Watchdog", "attempt_seconds", "budget_left", "retry_budget"]

# The time.monotonic() instant by which deliver()'s retry deadline ends, if any.
_retry_ends: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "macnss_auth_delivery_retry_ends", default=None
)
# A socket timeout of 0 would mean "non-blocking"; never go below this.
_SHORTEST = 0.01


@contextlib.contextmanager
def retry_budget(seconds: float) -> Iterator[None]:
    """Within the block, attempts end at the latest ``seconds`` from now.

    Budgets nest by narrowing: inside an enclosing budget, the earlier end
    wins, so a caller can bound several deliveries (a channel and its
    fallback) with one budget that no inner retry loop extends.
    """
    ends = time.monotonic() + max(seconds, 0.0)
    outer = _retry_ends.get()
    token = _retry_ends.set(ends if outer is None else min(ends, outer))
    try:
        yield
    finally:
        _retry_ends.reset(token)


def budget_left() -> float | None:
    """Seconds left in the enclosing :func:`retry_budget` (0 when spent), or None outside one."""
    ends = _retry_ends.get()
    return None if ends is None else max(ends - time.monotonic(), 0.0)


def attempt_seconds(limit: float) -> float:
    """Seconds the current attempt may take: ``limit``, or less if the retry deadline is nearer."""
    ends = _retry_ends.get()
    if ends is None:
        return limit
    return max(min(limit, ends - time.monotonic()), _SHORTEST)


class Watchdog:
    """Shuts a connection down when an attempt runs past its deadline.

    Usage: create it when the attempt starts, :meth:`watch` the socket as soon
    as it exists, and :meth:`release` when the attempt ends. The watchdog
    keeps its own duplicate of the socket's descriptor: shutting that down
    ends the connection for every descriptor of it (STARTTLS wraps the
    socket in a new object; a failed TLS handshake closes the original), and
    a descriptor of its own can never have been closed and reused for some
    other connection by the time the deadline fires.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._ends = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._released = False
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def left(self) -> float:
        """Seconds until the deadline (at least a few milliseconds: for socket timeouts)."""
        return max(self._ends - time.monotonic(), _SHORTEST)

    def watch(self, sock: socket.socket) -> None:
        """Watch ``sock``; if the deadline has passed already, shut it down now."""
        with self._lock:
            if self._released:
                return
            self._forget()
            self._fd = os.dup(sock.fileno())
            if self.fired:
                self._shutdown()

    def release(self) -> None:
        """Stop watching (closes the watchdog's duplicate descriptor); idempotent."""
        with self._lock:
            self._released = True
            self._forget()
        self._timer.cancel()

    def _forget(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _fire(self) -> None:
        with self._lock:
            if self._released:
                return
            self.fired = True
            self._shutdown()

    def _shutdown(self) -> None:
        # By descriptor, not object: STARTTLS wraps the socket in a new object,
        # and a blocked TLS handshake must wake too.
        if self._fd is None:
            return
        view = socket.socket(fileno=self._fd)
        try:
            view.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # Already shut down or not connected yet: nothing to wake.
        finally:
            view.detach()

    def __enter__(self) -> Watchdog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

"""The delivery contract: a message, a channel that sends it, and retries within a deadline.

A :class:`DeliveryChannel` sends one :class:`OutboundMessage` and either
returns a :class:`DeliveryReceipt` or raises
:class:`~macnss_auth.errors.DeliveryError` whose ``retryable`` says whether
trying again may help (a timeout, a refused connection, an SMTP 4xx reply, an
HTTP 429 or 5xx) or not (a rejected recipient, bad credentials, a TLS
certificate that does not verify).

:func:`deliver` wraps a channel with retries: transient failures are retried
with exponential backoff until a deadline, measured on an injectable
monotonic clock and slept with an injectable ``sleep``, so tests never wait.
Non-retryable failures stop at once.

Messages carry the code in their text, so their ``repr`` hides both the text
and the full destination.
"""

from __future__ import annotations

import contextlib
import enum
import time
from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable

import attrs

from macnss_auth.delivery._deadline import Watchdog, budget_left, retry_budget
from macnss_auth.errors import ConfigurationError, DeliveryError

__all__ = [
    "ChannelKind",
    "DeliveryChannel",
    "DeliveryError",
    "DeliveryReceipt",
    "DeliveryRejected",
    "DeliveryTimeout",
    "DeliveryUnavailable",
    "OutboundMessage",
    "RetryPolicy",
    "deliver",
]


class ChannelKind(str, enum.Enum):
    """What kind of destination a channel reaches. Stable strings."""

    SMS = "sms"
    EMAIL = "email"


class DeliveryTimeout(DeliveryError):
    """The server did not answer in time. Retryable: the next try may succeed.

    The message may or may not have been accepted; callers must treat the
    code as lost (and burn it) unless a retry succeeds.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class DeliveryUnavailable(DeliveryError):
    """The server could not be reached or is temporarily refusing (retryable)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class DeliveryRejected(DeliveryError):
    """The server refused the message for good: bad recipient, credentials or TLS.

    Attributes:
        status: the server's status (SMTP reply code, HTTP status, SMPP
            command_status), when there was one.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message, retryable=False)
        self.status = status


def _mask_for_repr(value: str) -> str:
    # Nothing of the address: the hint (shown beside it) is all a repr may tell.
    return "…"


@attrs.frozen
class OutboundMessage:
    """One message to send.

    Attributes:
        kind: SMS or e-mail.
        to: the full destination (E.164 number or e-mail address); hidden in repr.
        text: the body; it contains the code, so it is hidden in repr.
        subject: the e-mail subject line (unused for SMS).
        language: the BCP 47 tag of the text (``"ar"``, ``"fr"``, ``"en"``).
        hint: the masked destination, safe to log.
    """

    kind: ChannelKind
    to: str = attrs.field(repr=_mask_for_repr)
    text: str = attrs.field(repr=False)
    subject: str = ""
    language: str = "en"
    hint: str = ""


@attrs.frozen
class DeliveryReceipt:
    """What a channel reports after handing the message over.

    Attributes:
        channel: the channel's name (``"smtp"``, ``"http-sms"``, ``"smpp"``...).
        message_id: the server's id for the message, when it gave one.
        attempts: how many tries it took (set by :func:`deliver`).
        segments: SMS segments sent (1 for e-mail).
    """

    channel: str
    message_id: str | None = None
    attempts: int = 1
    segments: int = 1


@runtime_checkable
class DeliveryChannel(Protocol):
    """Sends messages of one kind."""

    @property
    def kind(self) -> ChannelKind:
        """What the channel reaches."""
        ...

    @property
    def name(self) -> str:
        """A short stable name for audit records (``"smtp"``, ``"console"``...)."""
        ...

    def send(self, message: OutboundMessage) -> DeliveryReceipt:
        """Hand ``message`` over, or raise.

        Raises:
            DeliveryError: with ``retryable`` set; never a third-party exception.
        """
        ...


@attrs.frozen
class RetryPolicy:
    """How :func:`deliver` retries transient failures.

    Attributes:
        max_attempts: tries in all, the first one included.
        base_delay: seconds before the first retry; doubles each time.
        max_delay: the longest pause between tries.
        deadline: seconds from the first try by which every try has ended:
            no new try starts after it, and the library's channels cut a
            running try short at it (a server that answers slowly cannot
            stretch it). Keep it well under the code lifetime: a code that
            arrives late is worth little.
    """

    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 4.0
    deadline: float = 20.0

    def __attrs_post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.deadline <= 0:
            raise ConfigurationError("delays must be >= 0 and the deadline positive")

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before try number ``attempt`` (2 for the first retry)."""
        return float(min(self.base_delay * 2 ** (attempt - 2), self.max_delay))


def deliver(
    channel: DeliveryChannel,
    message: OutboundMessage,
    *,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> DeliveryReceipt:
    """Send with retries of transient failures, within the policy's deadline.

    Returns:
        The channel's receipt, with ``attempts`` set.

    The policy's deadline bounds the whole call: each try gets what is left
    of it (the library's SMTP, SMPP and HTTP channels stop a try there with
    :class:`DeliveryTimeout`).

    Raises:
        DeliveryError: the last failure, once retries are exhausted, the
            deadline is near, or at once if the failure is not retryable.
    """
    policy = policy or RetryPolicy()
    started = monotonic()
    # Inside a caller's budget (a channel and its fallback), that budget bounds us too.
    outer = budget_left()
    deadline = policy.deadline if outer is None else min(policy.deadline, outer)
    attempt = 1
    while True:
        try:
            # The attempt may use what is left of the deadline, and no more:
            # the library's channels end their attempt there (see _deadline).
            with retry_budget(deadline - (monotonic() - started)):
                receipt = channel.send(message)
        except DeliveryError as exc:
            if not exc.retryable or attempt >= policy.max_attempts:
                raise
            pause = policy.delay_before(attempt + 1)
            if monotonic() - started + pause >= deadline:
                raise
            sleep(pause)
            attempt += 1
            continue
        return attrs.evolve(receipt, attempts=attempt)


@contextlib.contextmanager
def _typed_failures(
    watchdog: Watchdog, exchange: str, failure: Callable[[Exception], DeliveryError | None]
) -> Iterator[None]:
    """One attempt of a channel under ``watchdog``: what escapes the block is a DeliveryError.

    A DeliveryError passes as it is; anything else becomes
    :class:`DeliveryTimeout` if the watchdog fired (the shut-down socket
    surfaces as a broken link, an EOF or a TLS error, but the cause is the
    deadline), else ``failure(exc)``, the channel's own mapping (None: not the
    channel's to type, raised as it is). The watchdog is released on the way out.
    """
    try:
        yield
    except DeliveryError:
        raise
    except Exception as exc:
        if watchdog.fired:
            raise DeliveryTimeout(
                f"the {exchange} exchange did not finish within {watchdog.seconds:.3g} s"
            ) from exc
        typed = failure(exc)
        if typed is None:
            raise
        raise typed from exc
    finally:
        watchdog.release()

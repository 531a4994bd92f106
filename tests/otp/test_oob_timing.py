"""Enumeration resistance in time: begin() for known and unknown subjects costs the same.

Robust statistics: runs are interleaved (so drift and noise hit both sides
alike), compared by their medians, with a generous tolerance. The slow
channel (a few milliseconds per message) makes any leak obvious: without the
dispatcher, a known subject would take that much longer.
"""

from __future__ import annotations

import statistics
import time

import pytest

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.delivery import CapturingChannel, ChannelKind, DeliveryReceipt, OutboundMessage
from macnss_auth.otp.contacts import parse_phone, put_destination
from macnss_auth.otp.oob import (
    BackgroundDispatcher,
    Dispatcher,
    InlineDispatcher,
    ResendPolicy,
    SMSCodeAuthenticator,
)
from macnss_auth.secret import Secret
from macnss_auth.store import Keyring, MemoryStore
from macnss_auth.testing import FixedClock

# Wall-clock assertions: run by `make timing`, apart from the unit run.
pytestmark = pytest.mark.timing

SEND_SECONDS = 0.004
OPEN = ResendPolicy(
    cooldown=0, daily_per_subject=10**6, daily_per_destination=10**6, hourly_per_prefix=None
)


class SlowChannel(CapturingChannel):
    """A gateway that takes a few milliseconds per message, like a real one (but less)."""

    def send(self, message: OutboundMessage) -> DeliveryReceipt:
        time.sleep(SEND_SECONDS)
        return super().send(message)


def medians(dispatcher: Dispatcher, channel: CapturingChannel, runs: int) -> tuple[float, float]:
    clock = FixedClock.at(1_800_000_000)
    store = MemoryStore(keyring=Keyring.generate())
    put_destination(store, "alice", parse_phone("0612345678"), now=clock.now())
    auth = SMSCodeAuthenticator(
        channel=channel,
        store=store,
        audit=MemoryAuditLog(),
        pepper=Secret(b"p" * 32),
        clock=clock,
        dispatcher=dispatcher,
        resend=OPEN,
    )
    known: list[float] = []
    unknown: list[float] = []
    for i in range(runs + 10):
        pair: list[tuple[list[float], str]] = [(known, "alice"), (unknown, f"nobody-{i}")]
        if i % 2:
            pair.reverse()
        for bucket, subject in pair:
            started = time.perf_counter()
            auth.begin(subject)
            elapsed = time.perf_counter() - started
            if i >= 10:  # The first runs warm caches up.
                bucket.append(elapsed)
    return statistics.median(known), statistics.median(unknown)


def assert_close(known: float, unknown: float, *, slack: float) -> None:
    assert abs(known - unknown) <= slack * max(known, unknown) + 50e-6, (known, unknown)


def test_same_work_for_known_and_unknown_subjects() -> None:
    channel = CapturingChannel(ChannelKind.SMS)
    known, unknown = medians(InlineDispatcher(), channel, runs=300)
    assert len(channel.messages) == 310
    assert_close(known, unknown, slack=0.5)


def test_background_delivery_hides_a_slow_gateway() -> None:
    channel = SlowChannel(ChannelKind.SMS)
    with BackgroundDispatcher(max_workers=4) as dispatcher:
        known, unknown = medians(dispatcher, channel, runs=200)
        dispatcher.drain(30)
    assert len(channel.messages) == 210
    # Without the hand-off a known subject would take SEND_SECONDS longer.
    assert known < SEND_SECONDS / 2
    assert_close(known, unknown, slack=0.5)


def test_padding_hides_a_slow_gateway_when_delivering_inline() -> None:
    channel = SlowChannel(ChannelKind.SMS)
    known, unknown = medians(InlineDispatcher(min_duration=0.012), channel, runs=60)
    assert known >= 0.012
    assert unknown >= 0.012
    assert_close(known, unknown, slack=0.25)


def test_without_padding_a_slow_gateway_would_show() -> None:
    """The control experiment: the timing tests above can detect a leak."""
    channel = SlowChannel(ChannelKind.SMS)
    known, unknown = medians(InlineDispatcher(), channel, runs=30)
    assert known - unknown >= SEND_SECONDS * 0.8

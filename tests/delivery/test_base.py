"""Retries with backoff within a deadline, with an injected clock and sleep."""

from __future__ import annotations

import pytest

from macnss_auth.delivery import (
    CapturingChannel,
    ChannelKind,
    DeliveryChannel,
    DeliveryRejected,
    DeliveryTimeout,
    DeliveryUnavailable,
    OutboundMessage,
    RetryPolicy,
    deliver,
)
from macnss_auth.errors import ConfigurationError

MESSAGE = OutboundMessage(kind=ChannelKind.SMS, to="+212612345678", text="123456")


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def test_channels_satisfy_the_protocol() -> None:
    assert isinstance(CapturingChannel(ChannelKind.SMS), DeliveryChannel)


def test_success_after_transient_failures() -> None:
    channel = CapturingChannel(ChannelKind.SMS)
    channel.fail_with([DeliveryTimeout("slow"), DeliveryUnavailable("busy")])
    clock = FakeTime()
    receipt = deliver(
        channel,
        MESSAGE,
        policy=RetryPolicy(max_attempts=3, base_delay=0.5),
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )
    assert receipt.attempts == 3
    assert clock.pauses == [0.5, 1.0]
    assert len(channel.messages) == 1


def test_rejection_is_not_retried() -> None:
    channel = CapturingChannel(ChannelKind.SMS)
    channel.fail_with([DeliveryRejected("no such number", status=400)])
    clock = FakeTime()
    with pytest.raises(DeliveryRejected):
        deliver(channel, MESSAGE, sleep=clock.sleep, monotonic=clock.monotonic)
    assert channel.attempts == 1
    assert clock.pauses == []


def test_deadline_stops_retries() -> None:
    channel = CapturingChannel(ChannelKind.SMS)
    channel.fail_with([DeliveryTimeout("slow")] * 10)
    clock = FakeTime()
    policy = RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=4.0, deadline=6.0)
    with pytest.raises(DeliveryTimeout):
        deliver(channel, MESSAGE, policy=policy, sleep=clock.sleep, monotonic=clock.monotonic)
    # 1 + 2 = 3 s slept; the next pause (4 s) would cross the 6 s deadline.
    assert clock.pauses == [1.0, 2.0]
    assert channel.attempts == 3


def test_attempts_are_bounded() -> None:
    channel = CapturingChannel(ChannelKind.SMS)
    channel.fail_with([DeliveryUnavailable("busy")] * 5)
    clock = FakeTime()
    with pytest.raises(DeliveryUnavailable):
        deliver(
            channel,
            MESSAGE,
            policy=RetryPolicy(max_attempts=2, base_delay=0.1),
            sleep=clock.sleep,
            monotonic=clock.monotonic,
        )
    assert channel.attempts == 2


def test_policy_is_validated() -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ConfigurationError):
        RetryPolicy(deadline=0)

"""Regression tests for reviewed security findings in the out-of-band codes."""

from __future__ import annotations

import pytest

from macnss_auth.delivery import ChannelKind
from macnss_auth.errors import InvalidCode, RateLimited
from macnss_auth.otp.contacts import parse_email, parse_phone, put_destination
from macnss_auth.otp.oob import ResendPolicy

from .test_oob import enrolled, make


@pytest.mark.parametrize("kind", [ChannelKind.SMS, ChannelKind.EMAIL])
def test_a_decoy_challenge_accepts_no_code(kind: ChannelKind) -> None:
    # Same seed, same draws: the decoy's code is the one the real subject was sent.
    real, real_channel, _, _ = enrolled(kind)
    sent = real.begin("alice")
    code = real_channel.last_code()
    auth, channel, _, _ = make(kind)
    decoy = auth.begin("alice")
    assert decoy.id == sent.id
    assert not channel.messages
    with pytest.raises(InvalidCode):
        auth.verify(decoy, code)


@pytest.mark.parametrize("cap", ["prefix", "global"])
@pytest.mark.parametrize("kind", [ChannelKind.SMS, ChannelKind.EMAIL])
def test_full_real_send_caps_refuse_decoys_alike(kind: ChannelKind, cap: str) -> None:
    # Real sends fill the cap; an unknown subject must be refused exactly like
    # a real one, or RateLimited tells which subjects have a destination.
    resend = (
        ResendPolicy(cooldown=0, hourly_per_prefix=3)
        if cap == "prefix"
        else ResendPolicy(cooldown=0, hourly_per_prefix=None, hourly_global=3)
    )
    auth, channel, store, clock = make(kind, resend=resend)
    decoy = auth._decoy("nobody")  # the destination the unknown subject is counted against
    for i in range(4):
        if kind is ChannelKind.SMS:
            target = parse_phone(f"{decoy.address[:7]}{i:06d}"[:13])
        else:
            target = parse_email(f"real{i}@{decoy.address.rpartition('@')[2]}")
        put_destination(store, f"real{i}", target, now=clock.now())
    for i in range(3):
        auth.begin(f"real{i}")
    assert len(channel.messages) == 3
    with pytest.raises(RateLimited):
        auth.begin("real3")
    with pytest.raises(RateLimited):
        auth.begin("nobody")
    # Decoys only look: the real counters are not raised by them.
    clock.advance(3601)
    auth.begin("real3")
    assert len(channel.messages) == 4

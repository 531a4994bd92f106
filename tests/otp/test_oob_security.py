"""Regression tests for reviewed security findings in the out-of-band codes."""

from __future__ import annotations

import pytest

from macnss_auth.delivery import ChannelKind
from macnss_auth.errors import InvalidCode

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

"""The send counters of one subject are out of every other subject id's reach.

Review finding: the per-subject counter key held the subject id as given,
and a send's claim key appends ``:claim:<window start>:<count>`` to it. So
the unknown subject ``"alice:claim:0:0"`` had alice's counter key plus the
suffix of her first claim: one ``begin`` for it (nothing is sent, a decoy)
refused alice's next code with ``RateLimited``.
"""

from __future__ import annotations

import pytest

from macnss_auth.delivery import ChannelKind
from macnss_auth.otp.contacts import parse_email, parse_phone, put_destination

from .test_oob import EMAIL, PHONE, make


@pytest.mark.parametrize("kind", [ChannelKind.SMS, ChannelKind.EMAIL])
def test_another_subject_id_cannot_claim_a_subjects_send(kind: ChannelKind) -> None:
    auth, channel, store, clock = make(kind)
    own = parse_phone(PHONE) if kind is ChannelKind.SMS else parse_email(EMAIL)
    put_destination(store, "alice", own, now=clock.now())
    for forged in ("alice:claim:0:0", "alice:claim:0:0:claim:0:0"):
        auth.begin(forged)  # unknown subjects: decoys, nothing sent
    assert not channel.messages
    auth.begin("alice")  # the old code: RateLimited (retry_after 30)
    assert [m.to for m in channel.messages] == [own.address]

"""The out-of-band authenticator classifies stored challenges with the shared gate.

``macnss_auth.challenges.challenge_failure`` is the one place that decides
whether a stored challenge can still be answered; the SMS/e-mail
authenticator used to carry its own copy (checking attempts before expiry,
where every other method checks expiry first) and could run without an
audit log. Both are gone: one gate, and audit required.
"""

from __future__ import annotations

import pytest

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.challenges import challenge_failure
from macnss_auth.delivery import CapturingChannel, ChannelKind
from macnss_auth.errors import AuthenticationFailed, ChallengeNotFound, InvalidCode, Reason
from macnss_auth.otp.oob import GENERIC_FAILURE, EmailCodeAuthenticator, SMSCodeAuthenticator
from macnss_auth.store import MemoryStore
from tests.otp.test_oob import PEPPER, enrolled, wrong


def test_an_expired_and_exhausted_code_is_refused_as_the_gate_says() -> None:
    audit = MemoryAuditLog()
    auth, channel, store, clock = enrolled(audit=audit)
    challenge = auth.begin("alice")
    code = channel.last_code()
    for _ in range(5):
        clock.advance(20)  # Let the per-subject throttle's growing delay pass.
        with pytest.raises(InvalidCode):
            auth.verify(challenge, wrong(code))
    clock.advance(auth.codes.lifetime)  # now out of attempts *and* expired
    expected = challenge_failure(
        store.get_challenge(challenge.id), auth.method, clock.now(), purpose="login"
    )
    assert expected is not None
    with pytest.raises(AuthenticationFailed) as info:
        auth.verify(challenge, code)
    assert type(info.value) is type(expected)
    assert info.value.reason is expected.reason is Reason.CHALLENGE_EXPIRED
    assert str(info.value) == GENERIC_FAILURE
    assert audit.events[-1].reason == Reason.CHALLENGE_EXPIRED.value


def test_an_enrollment_code_cannot_log_in_and_the_gate_says_why() -> None:
    auth, _, store, clock = enrolled()
    enrolling = auth.enroll("alice", "+212612345679")
    record = store.get_challenge(enrolling.id)
    assert isinstance(challenge_failure(record, auth.method, clock.now()), type(None))
    failure = challenge_failure(record, auth.method, clock.now(), purpose="login")
    assert isinstance(failure, ChallengeNotFound)
    with pytest.raises(ChallengeNotFound):
        auth.verify(enrolling, "123456")


@pytest.mark.parametrize("cls", [SMSCodeAuthenticator, EmailCodeAuthenticator])
def test_audit_is_required(cls: type[SMSCodeAuthenticator]) -> None:
    channel = CapturingChannel(cls.default_kind or ChannelKind.SMS)
    with pytest.raises(TypeError, match="audit"):
        cls(channel=channel, store=MemoryStore(), pepper=PEPPER)  # type: ignore[call-arg]

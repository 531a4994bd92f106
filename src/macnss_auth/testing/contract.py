"""Contract tests that every :class:`~macnss_auth.Authenticator` must pass.

Subclass :class:`AuthenticatorContract` in a test module (its name must start
with ``Test``), provide the fixtures ``authenticator``, ``subject`` (enrolled
and ready) and ``clock`` (a :class:`~macnss_auth.testing.FixedClock` the
authenticator uses), and implement :meth:`good_response`,
:meth:`bad_response` and :meth:`secrets`::

    class TestTotpContract(AuthenticatorContract):
        @pytest.fixture
        def authenticator(self, clock): ...
        def good_response(self, authenticator, challenge): return current_code()
        def bad_response(self, authenticator, challenge): return "000000"
        def secrets(self, authenticator, subject): return [seed_base32]

This module imports pytest; import it from tests only.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest

from macnss_auth.authenticator import AssuranceLevel, AuthResult, Challenge
from macnss_auth.errors import (
    AuthenticationFailed,
    ChallengeExpired,
    ChallengeNotFound,
    Reason,
)
from macnss_auth.testing.clock import FixedClock

__all__ = ["AuthenticatorContract"]


class AuthenticatorContract:
    """The behaviour every authentication method shares."""

    def good_response(self, authenticator: Any, challenge: Challenge) -> Any:
        """A response that must succeed for ``challenge``."""
        raise NotImplementedError

    def bad_response(self, authenticator: Any, challenge: Challenge) -> Any:
        """A well-formed response that must fail for ``challenge``."""
        raise NotImplementedError

    def secrets(self, authenticator: Any, subject: str) -> list[str]:
        """Text forms of every secret that must never reach a challenge."""
        raise NotImplementedError

    def test_method_is_a_stable_name(self, authenticator: Any) -> None:
        method = authenticator.method
        assert isinstance(method, str)
        assert method
        assert method == method.lower()

    def test_begin_returns_a_public_challenge(
        self, authenticator: Any, subject: str, clock: FixedClock
    ) -> None:
        challenge = authenticator.begin(subject)
        assert isinstance(challenge, Challenge)
        assert challenge.subject == subject
        assert challenge.method == authenticator.method
        assert challenge.created_at == clock.now()
        assert challenge.expires_at > challenge.created_at
        assert Challenge.from_json(challenge.to_json()) == challenge
        text = challenge.to_json() + repr(challenge)
        for secret in self.secrets(authenticator, subject):
            assert secret not in text

    def test_good_response_gives_a_frozen_result(self, authenticator: Any, subject: str) -> None:
        challenge = authenticator.begin(subject)
        result = authenticator.verify(challenge, self.good_response(authenticator, challenge))
        assert isinstance(result, AuthResult)
        assert result.subject == subject
        assert result.method == authenticator.method
        assert isinstance(result.assurance, AssuranceLevel)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            result.subject = "someone else"  # type: ignore[misc]
        for secret in self.secrets(authenticator, subject):
            assert secret not in repr(result)

    def test_verify_accepts_the_challenge_id(self, authenticator: Any, subject: str) -> None:
        challenge = authenticator.begin(subject)
        result = authenticator.verify(challenge.id, self.good_response(authenticator, challenge))
        assert result.subject == subject

    def test_bad_response_raises_with_a_reason(self, authenticator: Any, subject: str) -> None:
        challenge = authenticator.begin(subject)
        with pytest.raises(AuthenticationFailed) as info:
            authenticator.verify(challenge, self.bad_response(authenticator, challenge))
        assert isinstance(info.value.reason, Reason)
        for secret in self.secrets(authenticator, subject):
            assert secret not in str(info.value)

    def test_a_challenge_is_single_use(self, authenticator: Any, subject: str) -> None:
        challenge = authenticator.begin(subject)
        response = self.good_response(authenticator, challenge)
        authenticator.verify(challenge, response)
        with pytest.raises(AuthenticationFailed):
            authenticator.verify(challenge, response)

    def test_unknown_challenge_is_refused(self, authenticator: Any, subject: str) -> None:
        challenge = authenticator.begin(subject)
        forged = attrs.evolve(challenge, id=challenge.id + "x")
        with pytest.raises(ChallengeNotFound):
            authenticator.verify(forged, self.good_response(authenticator, challenge))

    def test_expired_challenge_is_refused(
        self, authenticator: Any, subject: str, clock: FixedClock
    ) -> None:
        challenge = authenticator.begin(subject)
        response = self.good_response(authenticator, challenge)
        clock.set(challenge.expires_at)
        with pytest.raises(ChallengeExpired):
            authenticator.verify(challenge, response)

    def test_client_cannot_rewrite_the_challenge(self, authenticator: Any, subject: str) -> None:
        challenge = authenticator.begin(subject)
        tampered = attrs.evolve(challenge, subject="mallory", expires_at=challenge.expires_at)
        try:
            result = authenticator.verify(tampered, self.good_response(authenticator, challenge))
        except AuthenticationFailed:
            return
        assert result.subject == subject

    def test_challenge_json_is_plain(self, authenticator: Any, subject: str) -> None:
        challenge = authenticator.begin(subject)
        value = json.loads(challenge.to_json())
        assert set(value) == {"id", "subject", "method", "created_at", "expires_at", "hint", "data"}

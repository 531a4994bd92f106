"""What every challenge-based method checks before looking at a response.

The one place that classifies a stored challenge: unknown (or of another
method), used, expired, or burnt by wrong answers. Methods call
:func:`challenge_failure` first and only then examine the response.
"""

from __future__ import annotations

import datetime as dt

from macnss_auth.authenticator import Challenge
from macnss_auth.errors import (
    AuthenticationFailed,
    ChallengeExpired,
    ChallengeNotFound,
    ChallengeUsed,
    MalformedInput,
    Reason,
)
from macnss_auth.store.base import ChallengeRecord

__all__ = ["challenge_failure", "challenge_id_of"]


def challenge_id_of(challenge: Challenge | str) -> str:
    """The id of a challenge or of an id given as text.

    Raises:
        MalformedInput: neither a Challenge nor text.
    """
    challenge_id = challenge.id if isinstance(challenge, Challenge) else challenge
    if not isinstance(challenge_id, str):
        raise MalformedInput("the challenge id must be text", field="challenge")
    return challenge_id


def challenge_failure(
    record: ChallengeRecord | None, method: str, now: dt.datetime
) -> AuthenticationFailed | None:
    """Why ``record`` cannot be answered now, or None if it can.

    A challenge of another method counts as unknown: a client cannot route an
    SMS challenge to the TOTP verifier.
    """
    if record is None or record.challenge.method != method:
        return ChallengeNotFound()
    if record.consumed:
        return ChallengeUsed()
    if record.challenge.is_expired(now):
        return ChallengeExpired()
    if record.attempts >= record.max_attempts:
        return ChallengeUsed(reason=Reason.ATTEMPTS_EXHAUSTED)
    return None

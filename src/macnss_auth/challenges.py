"""What every challenge-based method checks before looking at a response.

The one place that classifies a stored challenge: unknown (or of another
method), used, expired, or burnt by wrong answers. Methods call
:func:`challenge_failure` first and only then examine the response.

It also holds the one check of what callers pass in as ids: a subject must
be text that every store can hold (:func:`subject_of`), and a challenge id
must be text (:func:`challenge_id_of`; an id no store can hold is simply
never found).
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
from macnss_auth.store._codec import storable
from macnss_auth.store.base import ChallengeRecord

__all__ = ["MAX_SUBJECT_LENGTH", "challenge_failure", "challenge_id_of", "subject_of"]

#: Longest subject id, in characters: bounded so that every backend can index
#: it (PostgreSQL btree entries hold at most ~2.7 kB; 512 characters of UTF-8
#: are at most 2 kB) and so that a request cannot make the server hash megabytes.
MAX_SUBJECT_LENGTH = 512


def subject_of(subject: object) -> str:
    """``subject`` if it is a usable subject id.

    Raises:
        MalformedInput: (``field="subject"``) not text, empty, longer than
            :data:`MAX_SUBJECT_LENGTH`, or holding NUL or a lone surrogate.
    """
    if (
        not isinstance(subject, str)
        or not subject
        or len(subject) > MAX_SUBJECT_LENGTH
        or not storable(subject)
    ):
        raise MalformedInput(
            f"the subject must be 1 to {MAX_SUBJECT_LENGTH} characters of text"
            " without NUL or lone surrogates",
            field="subject",
        )
    return subject


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
    record: ChallengeRecord | None,
    method: str,
    now: dt.datetime,
    *,
    purpose: str | None = None,
) -> AuthenticationFailed | None:
    """Why ``record`` cannot be answered now, or None if it can.

    A challenge of another method counts as unknown: a client cannot route an
    SMS challenge to the TOTP verifier. So does one of another ``purpose``
    (``challenge.data["purpose"]``), when the method gives one: an enrollment
    code cannot log anyone in, nor a login code confirm a destination.
    """
    if record is None or record.challenge.method != method:
        return ChallengeNotFound()
    if purpose is not None and record.challenge.data.get("purpose") != purpose:
        return ChallengeNotFound()
    if record.consumed:
        return ChallengeUsed()
    if record.challenge.is_expired(now):
        return ChallengeExpired()
    if record.attempts >= record.max_attempts:
        return ChallengeUsed(reason=Reason.ATTEMPTS_EXHAUSTED)
    return None

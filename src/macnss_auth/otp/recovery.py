"""Recovery codes: single-use look-up secrets for when the phone is lost.

A subject gets a *set* of codes (default ten) to print or write down; each
works once. They are NIST SP 800-63B look-up secrets: 12 characters of
Crockford base32 (60 bits each, shown as ``ABCD-EFGH-JKMN``), so below the
112 bits that would allow a fast hash. At rest they are therefore hashed
with scrypt, a slow memory-hard KDF:

* one random **salt per set**, stored (public) in the set's enrollment
  params, with the scrypt cost parameters;
* one random **pepper per set**, stored as the enrollment's secret, which the
  store seals with its keyring; a stolen database file alone does not allow
  even a slow offline search;
* the digests go into the store as single-use tokens (``Store.add_tokens``).

Checking a code is therefore one KDF call and one atomic
``Store.consume_token``, which exactly one caller wins: a code can never be
used twice, even by racing instances. Generating a new set replaces the old
one (a new generation id names the new token set). Attempts are throttled
like OTP codes (namespace ``"recovery"``), and an unknown subject costs the
same KDF call before failing with :class:`~macnss_auth.errors.InvalidCode`.

Input is forgiving the Crockford way: case, spaces and dashes are ignored,
``O`` reads as ``0`` and ``I``/``L`` as ``1``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs

from macnss_auth.audit.events import AuditAction, AuditLog
from macnss_auth.authenticator import AuthResult, ClientContext
from macnss_auth.challenges import subject_of
from macnss_auth.errors import (
    ConfigurationError,
    InvalidCode,
    MalformedInput,
)
from macnss_auth.otp.code_flow import CodeAuthenticatorBase, CodeSettings, _Request
from macnss_auth.secret import Secret
from macnss_auth.store.base import Enrollment, Store

if TYPE_CHECKING:
    # Only for the type checker (PEP 692 on Python 3.10): nothing imports it at run time.
    from typing_extensions import Unpack

__all__ = [
    "ALPHABET",
    "RecoveryCodeAuthenticator",
    "RecoveryCodes",
    "normalize_recovery_code",
]

#: Crockford's base32 alphabet: digits and letters without I, L, O, U.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_READS_AS = {"O": "0", "I": "1", "L": "1"}
_SEPARATORS = frozenset(" -\u00a0\t")
_FAST_HASH_BITS = 112  # NIST SP 800-63B §5.1.2.2: below this, use a salted slow KDF
_MAX_INPUT = 64
_MIN_LENGTH = 10
_MAX_LENGTH = 40


def normalize_recovery_code(text: object, *, length: int | None) -> str:
    """Upper-case Crockford base32 of exactly ``length`` symbols, or raise.

    Args:
        text: what the person typed.
        length: the exact length required; None: any length a set may have
            (10 to 40), as verification uses, so that a code of another
            length than the subject's fails as a wrong code, the same way as
            for a subject without codes.

    Raises:
        MalformedInput: (``field="code"``) not text, a character outside the
            alphabet, or the wrong length; the message never repeats the input.
    """
    if not isinstance(text, str):
        raise MalformedInput("the recovery code must be text", field="code")
    if len(text) > _MAX_INPUT:
        raise MalformedInput("the recovery code is too long", field="code")
    out: list[str] = []
    for char in text.upper():
        if char in _SEPARATORS:
            continue
        char = _READS_AS.get(char, char)  # noqa: PLW2901 (Crockford's decoding rules)
        if char not in ALPHABET:
            raise MalformedInput(
                "a recovery code has only letters, digits, spaces and dashes", field="code"
            )
        out.append(char)
    if length is None:
        if not _MIN_LENGTH <= len(out) <= _MAX_LENGTH:
            raise MalformedInput(
                f"a recovery code has {_MIN_LENGTH} to {_MAX_LENGTH} characters", field="code"
            )
    elif len(out) != length:
        raise MalformedInput(f"a recovery code has {length} characters", field="code")
    return "".join(out)


@attrs.frozen
class RecoveryCodes:
    """A freshly generated set, shown to the person once.

    Attributes:
        subject: whose codes.
        codes: the codes, grouped for reading (never in repr).
        generated_at: when.
        audit_event_id: the audit record of the generation.
    """

    subject: str
    codes: tuple[str, ...] = attrs.field(repr=False)
    generated_at: dt.datetime
    audit_event_id: str | None = None


class RecoveryCodeAuthenticator(CodeAuthenticatorBase):
    """Single-use recovery codes, behind the common Authenticator interface.

    Collaborators and settings are keyword-only: ``store``, ``audit``,
    ``clock``, ``random``, ``throttle_policy``, ``challenge_ttl``,
    ``challenge_attempts``, and ``count`` (codes per set, default 10),
    ``length`` (symbols per code, default 12 = 60 bits), ``scrypt_n``
    (default 2**15, about 32 MiB and tens of milliseconds per check),
    ``scrypt_r`` (8), ``scrypt_p`` (1).
    """

    _method = "recovery"

    def __init__(
        self,
        *,
        store: Store,
        audit: AuditLog,
        count: int = 10,
        length: int = 12,
        scrypt_n: int = 2**15,
        scrypt_r: int = 8,
        scrypt_p: int = 1,
        **settings: Unpack[CodeSettings],
    ) -> None:
        if not 1 <= count <= 100:
            raise ConfigurationError("a recovery set has 1 to 100 codes")
        if not _MIN_LENGTH <= length <= _MAX_LENGTH:
            raise ConfigurationError("a recovery code has 10 to 40 symbols (50 to 200 bits)")
        if scrypt_n < 2**10 or scrypt_n & (scrypt_n - 1) or scrypt_r < 1 or scrypt_p < 1:
            raise ConfigurationError("scrypt_n must be a power of two >= 1024; r, p >= 1")
        super().__init__(store=store, audit=audit, **settings)
        self.count = count
        self.length = length
        self._kdf = {"n": scrypt_n, "r": scrypt_r, "p": scrypt_p}

    def __repr__(self) -> str:
        return f"RecoveryCodeAuthenticator(count={self.count}, length={self.length})"

    @property
    def bits(self) -> int:
        """Entropy of one code."""
        return 5 * self.length

    def generate(self, subject: str, *, context: ClientContext | None = None) -> RecoveryCodes:
        """Create a new set for ``subject``, replacing any previous one.

        Returns the codes in clear, once; only their digests are stored.

        Raises:
            MalformedInput: ``subject`` is not a usable subject id.
        """
        subject = subject_of(subject)
        now = self._clock.now()
        salt = self._random.token_bytes(16)
        pepper = Secret(self._random.token_bytes(32))
        generation = self._random.token_bytes(16).hex()
        params: dict[str, str | int] = {
            "salt": salt.hex(),
            "generation": generation,
            "length": self.length,
            "kdf": "scrypt" if self.bits < _FAST_HASH_BITS else "hmac-sha256",
            **self._kdf,
        }
        codes = [self._new_code() for _ in range(self.count)]
        digests = [self._digest(code, pepper, params) for code in codes]
        enrollment = Enrollment(
            subject=subject,
            method=self._method,
            secret=pepper,
            params=params,
            confirmed=True,
            created_at=now,
        )
        # One commit for the new set, the old set's end and the record when the
        # layout allows (see code_flow); otherwise the order below still holds.
        with self._grouped():
            previous = self._store.get_enrollment(subject, self._method)
            # Tokens first, then the enrollment that points at them: a reader never
            # sees an enrollment whose token set is missing. The old set goes last.
            self._store.add_tokens(self._tokens_key(generation), digests)
            self._store.put_enrollment(enrollment)
            if previous is not None:
                self._store.add_tokens(self._tokens_key(str(previous.params["generation"])), [])
            details = {"count": str(self.count), "bits": str(self.bits)}
            event_id = self._enrolled(subject, context, now, details)
        grouped = tuple("-".join(c[i : i + 4] for i in range(0, len(c), 4)) for c in codes)
        return RecoveryCodes(
            subject=subject, codes=grouped, generated_at=now, audit_event_id=event_id
        )

    def remaining(self, subject: str) -> int:
        """Unused codes left in ``subject``'s set (0 if none)."""
        enrollment = self._store.get_enrollment(subject, self._method)
        if enrollment is None:
            return 0
        return self._store.count_tokens(self._tokens_key(str(enrollment.params["generation"])))

    def revoke(self, subject: str, *, context: ClientContext | None = None) -> bool:
        """Invalidate the set; True if there was one."""
        subject = subject_of(subject)
        with self._grouped():
            enrollment = self._store.get_enrollment(subject, self._method)
            removed = self._store.delete_enrollment(subject, self._method)
            if enrollment is not None:
                self._store.add_tokens(self._tokens_key(str(enrollment.params["generation"])), [])
            return self._revoked(subject, removed, context)

    def _check(self, request: _Request) -> AuthResult:
        subject, context, now = request.subject, request.context, request.now
        enrollment, challenge_id = request.enrollment, request.challenge_id
        action = AuditAction.RECOVERY
        with self._malformed_audited(subject, context, now, action):
            # Any valid length: a wrong one fails below as a wrong code, as for
            # an unknown subject (the set's length must not show).
            normalized = normalize_recovery_code(request.code, length=None)
        trial = self._acquire(subject, context, now, action)
        if enrollment is None:
            # The same KDF call and the same store call as for a real set (on a
            # token set nobody fills), then the same answer.
            key = self._tokens_key("0" * 32)
            digest = self._digest(normalized, Secret(bytes(32)), self._dummy_params())
        else:
            key = self._tokens_key(str(enrollment.params["generation"]))
            digest = self._digest(normalized, enrollment.secret, enrollment.params)
        if not self._store.consume_token(key, digest) or enrollment is None:
            raise self._failed(InvalidCode, trial, challenge_id=challenge_id)
        # A racing request may have used the challenge meanwhile; then the code is
        # spent (single use is decided by the token alone), the session is not opened.
        self._consume_challenge(trial, challenge_id)
        self._throttle.release(subject, context)
        return self._succeeded(trial, {"remaining": str(self._store.count_tokens(key))})

    # Helpers -------------------------------------------------------------------
    def _new_code(self) -> str:
        # Each symbol takes 5 bits from a fresh random integer: uniform over ALPHABET.
        raw = int.from_bytes(self._random.token_bytes((5 * self.length + 7) // 8), "big")
        return "".join(ALPHABET[(raw >> (5 * i)) & 31] for i in range(self.length))

    def _dummy_params(self) -> dict[str, str | int]:
        return {
            "salt": "00" * 16,
            "kdf": "scrypt" if self.bits < _FAST_HASH_BITS else "hmac-sha256",
            **self._kdf,
        }

    @staticmethod
    def _digest(code: str, pepper: Secret, params: Mapping[str, str | int]) -> bytes:
        salt = bytes.fromhex(str(params["salt"]))
        if params["kdf"] == "scrypt":
            n, r, p = (int(params[k]) for k in ("n", "r", "p"))
            return hashlib.scrypt(
                code.encode("ascii"),
                salt=salt + pepper.reveal(),
                n=n,
                r=r,
                p=p,
                maxmem=256 * r * n + (1 << 20),
                dklen=32,
            )
        return hmac.digest(pepper.reveal(), salt + code.encode("ascii"), "sha256")

    def _tokens_key(self, generation: str) -> str:
        return f"otp:{self._method}:{generation}"

"""Phone numbers and e-mail addresses: validation, masking, and where they are kept.

* Phone numbers are parsed with ``phonenumbers`` (default region ``MA``, so
  ``06 12 34 56 78`` is understood) and stored in E.164 (``+212612345678``).
  Only numbers that ``phonenumbers`` considers valid are accepted, and only
  types that can receive SMS (mobile, or fixed-line-or-mobile where a plan
  does not tell them apart).
* E-mail addresses are checked with ``email-validator`` *without* DNS
  lookups by default (no network I/O on the request path); the domain is
  lower-cased, the local part kept as typed.
* Hints mask a destination for display and audit: ``+212 6•• ••• •12``,
  ``a•••@example.org``. A hint never contains more than the first digit and
  the last two digits of a national number, or the first character of the
  local part of an address.

A destination is kept as an :class:`~macnss_auth.store.Enrollment` of method
``"sms"`` or ``"email"``, the address sealed at rest as the enrollment's
secret (a phone number is personal data). A destination being confirmed
lives under ``"sms.pending"`` / ``"email.pending"`` until the person types
the code sent to it (see :meth:`macnss_auth.otp.oob.OutOfBandAuthenticator.enroll`),
so an unconfirmed destination never replaces a confirmed one and never
receives login codes.
"""

from __future__ import annotations

import datetime as dt
import re

import attrs
import email_validator
import phonenumbers

from macnss_auth.delivery.base import ChannelKind, _mask_for_repr
from macnss_auth.errors import MalformedInput
from macnss_auth.secret import Secret
from macnss_auth.store.base import Enrollment, Store

__all__ = [
    "DEFAULT_REGION",
    "MASK",
    "Destination",
    "confirmed_destination",
    "mask_email",
    "mask_national",
    "mask_phone",
    "parse_destination",
    "parse_email",
    "parse_phone",
    "pending_method",
    "promote_pending",
    "put_destination",
    "put_pending",
    "remove_destination",
    "validate_destination",
]

DEFAULT_REGION = "MA"
MASK = "•"
_MAX_INPUT = 320  # RFC 3696 errata: the longest valid address is 320 octets.
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")  # ITU-T E.164: at most 15 digits.

_SMS_TYPES = frozenset(
    {
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    }
)


@attrs.frozen
class Destination:
    """A validated, normalized destination.

    Attributes:
        kind: SMS or e-mail.
        address: E.164 number or normalized e-mail address (hidden in repr,
            where only the hint shows).
        hint: the masked form, safe to show and to audit (computed if not given).
    """

    kind: ChannelKind
    address: str = attrs.field(repr=_mask_for_repr)
    hint: str = attrs.field(default="", eq=False)

    def __attrs_post_init__(self) -> None:
        # One address, well formed: it becomes an SMTP envelope or an SMPP
        # destination, where a comma or a line break would add recipients.
        _check_address(self.kind, self.address)
        # Masking parses the number again: do it once, here.
        if not self.hint:
            hint = (
                mask_phone(self.address)
                if self.kind is ChannelKind.SMS
                else mask_email(self.address)
            )
            object.__setattr__(self, "hint", hint)


def _check_address(kind: ChannelKind, address: object) -> None:
    if kind is ChannelKind.SMS:
        if not isinstance(address, str) or _E164.fullmatch(address) is None:
            raise MalformedInput("not an E.164 phone number", field="phone")
        return
    if not isinstance(address, str) or not address or len(address) > _MAX_INPUT:
        raise MalformedInput("this e-mail address is not valid", field="email")
    if address != address.strip():
        raise MalformedInput("this e-mail address is not valid", field="email")
    try:
        email_validator.validate_email(address, check_deliverability=False)
    except email_validator.EmailNotValidError:
        raise MalformedInput("this e-mail address is not valid", field="email") from None


def validate_destination(destination: object) -> Destination:
    """Check ``destination`` again (one E.164 number or one e-mail address); return it.

    :class:`Destination` validates itself when built; this guards stores and
    senders against an instance built around ``__init__``.

    Raises:
        MalformedInput: the address is not a single valid number or address.
    """
    if not isinstance(destination, Destination) or not isinstance(destination.kind, ChannelKind):
        raise MalformedInput("not a destination", field="destination")
    _check_address(destination.kind, destination.address)
    return destination


def _group(digits: str) -> str:
    return " ".join(digits[i : i + 3] for i in range(0, len(digits), 3))


def mask_phone(e164: str) -> str:
    """Mask an E.164 number: country code, first and last two national digits.

    >>> mask_phone("+212612345678")
    '+212 6•• ••• •78'

    Raises:
        MalformedInput: not an E.164 number.
    """
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        raise MalformedInput("not an E.164 phone number", field="phone") from None
    return mask_national(number.country_code or 0, phonenumbers.national_significant_number(number))


def mask_national(country_code: int, national: str) -> str:
    """Mask a number given as country code and national significant digits.

    >>> mask_national(212, "612345678")
    '+212 6•• ••• •78'
    """
    if len(national) < 4:
        masked = MASK * len(national)
    else:
        masked = national[0] + MASK * (len(national) - 3) + national[-2:]
    return f"+{country_code} {_group(masked)}"


def mask_email(address: str) -> str:
    """Mask an e-mail address: the first character of the local part and the domain.

    >>> mask_email("alice@example.org")
    'a•••@example.org'
    """
    local, at, domain = address.rpartition("@")
    if not at or not local:
        return MASK * 3
    return f"{local[0]}{MASK * 3}@{domain}"


def parse_phone(text: str, *, region: str = DEFAULT_REGION) -> Destination:
    """Validate and normalize a phone number that can receive SMS.

    Args:
        text: what the person typed (``"06 12 34 56 78"``, ``"+212 612-345678"``).
        region: the ISO 3166 region for numbers without a country code.

    Raises:
        MalformedInput: (``field="phone"``) not a valid number, or not one that
            can receive SMS. The message never repeats the input.
    """
    if len(text) > 64:
        raise MalformedInput("a phone number must be short text", field="phone")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise MalformedInput("this is not a phone number", field="phone") from None
    if not phonenumbers.is_valid_number(number):
        raise MalformedInput("this phone number is not valid", field="phone")
    if phonenumbers.number_type(number) not in _SMS_TYPES:
        raise MalformedInput("this phone number cannot receive SMS", field="phone")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return Destination(kind=ChannelKind.SMS, address=e164)


def parse_email(text: str, *, check_deliverability: bool = False) -> Destination:
    """Validate and normalize an e-mail address.

    Args:
        text: the address.
        check_deliverability: also look up the domain's MX/A records (network I/O).

    Raises:
        MalformedInput: (``field="email"``) not a valid address.
    """
    if len(text) > _MAX_INPUT:
        raise MalformedInput("an e-mail address must be short text", field="email")
    try:
        valid = email_validator.validate_email(
            text.strip(), check_deliverability=check_deliverability
        )
    except email_validator.EmailNotValidError:
        raise MalformedInput("this e-mail address is not valid", field="email") from None
    return Destination(kind=ChannelKind.EMAIL, address=valid.normalized)


def parse_destination(kind: ChannelKind, text: str, *, region: str = DEFAULT_REGION) -> Destination:
    """:func:`parse_phone` or :func:`parse_email`, by ``kind``.

    Raises:
        MalformedInput: the destination is not valid.
    """
    if kind is ChannelKind.SMS:
        return parse_phone(text, region=region)
    return parse_email(text)


def pending_method(kind: ChannelKind) -> str:
    """The enrollment method under which a destination waits for confirmation."""
    return f"{kind.value}.pending"


def _enrollment(
    subject: str,
    method: str,
    destination: Destination,
    *,
    now: dt.datetime,
    confirmed: bool,
    expires_at: dt.datetime | None = None,
    challenge_id: str | None = None,
) -> Enrollment:
    validate_destination(destination)
    params: dict[str, str | int] = {"kind": destination.kind.value, "hint": destination.hint}
    if challenge_id is not None:
        params["challenge"] = challenge_id
    return Enrollment(
        subject=subject,
        method=method,
        secret=Secret(destination.address.encode("utf-8")),
        params=params,
        confirmed=confirmed,
        created_at=now,
        expires_at=expires_at,
    )


def put_destination(
    store: Store, subject: str, destination: Destination, *, now: dt.datetime
) -> Enrollment:
    """Record a *confirmed* destination directly.

    Only for destinations already verified by other means (an import from a
    registry that confirmed them); people add theirs through
    :meth:`~macnss_auth.otp.oob.OutOfBandAuthenticator.enroll`.
    """
    enrollment = _enrollment(subject, destination.kind.value, destination, now=now, confirmed=True)
    store.put_enrollment(enrollment)
    return enrollment


def put_pending(
    store: Store,
    subject: str,
    destination: Destination,
    *,
    now: dt.datetime,
    challenge_id: str,
    expires_at: dt.datetime,
) -> None:
    """Record a destination that waits for the code of ``challenge_id``."""
    store.put_enrollment(
        _enrollment(
            subject,
            pending_method(destination.kind),
            destination,
            now=now,
            confirmed=False,
            expires_at=expires_at,
            challenge_id=challenge_id,
        )
    )


def confirmed_destination(store: Store, subject: str, kind: ChannelKind) -> Destination | None:
    """The subject's confirmed destination of ``kind``, or None."""
    enrollment = store.get_enrollment(subject, kind.value)
    if enrollment is None or not enrollment.confirmed:
        return None
    hint = enrollment.params.get("hint")
    return Destination(
        kind=kind,
        address=enrollment.secret.reveal().decode("utf-8"),
        hint=hint if isinstance(hint, str) else "",
    )


def promote_pending(
    store: Store, subject: str, kind: ChannelKind, *, challenge_id: str, now: dt.datetime
) -> Destination | None:
    """Make the pending destination of ``challenge_id`` the confirmed one.

    Returns None when no pending destination belongs to that challenge (it
    was replaced by a newer enrollment, or expired).
    """
    pending = store.get_enrollment(subject, pending_method(kind))
    if (
        pending is None
        or pending.params.get("challenge") != challenge_id
        or not pending.is_usable(now)
    ):
        return None
    destination = Destination(kind=kind, address=pending.secret.reveal().decode("utf-8"))
    put_destination(store, subject, destination, now=now)
    store.delete_enrollment(subject, pending_method(kind))
    return destination


def remove_destination(store: Store, subject: str, kind: ChannelKind) -> bool:
    """Forget the subject's destination of ``kind`` (confirmed and pending)."""
    pending = store.delete_enrollment(subject, pending_method(kind))
    confirmed = store.delete_enrollment(subject, kind.value)
    return pending or confirmed

"""Machine readable zones (ICAO 9303 Parts 3-6) and the passwords derived from them.

Three layouts exist: TD1 (ID cards, 3 lines of 30), TD2 (2 lines of 36) and
TD3 (passports, 2 lines of 44). Each carries check digits (weights 7-3-1,
digits as themselves, ``A``-``Z`` as 10-35, ``<`` as 0; ICAO 9303-3 §4.9) over
the document number, the dates of birth and expiry, and a composite one over
most of the zone.

BAC and PACE use the "MRZ information" (ICAO 9303-11 §9.7.2 and §4.4.1):
``document number || check digit || date of birth || check digit ||
date of expiry || check digit``; BAC's key seed is the first 16 bytes of its
SHA-1, PACE's password is the whole SHA-1. :class:`MrzKey` holds just those
three fields, :class:`CAN` the card access number, the other PACE password.

TD1 (and TD2) allow document numbers longer than 9 characters: the first nine
sit in the number field, a ``<`` takes the check digit's place, and the rest of
the number followed by its check digit opens the optional data field
(ICAO 9303-5 §4.2.4, note j).

An MRZ is personal data: every type here redacts its ``repr`` and no error
message quotes the zone, only the name of the field that failed.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from typing import NoReturn

import attrs

from macnss_auth.errors import MalformedInput
from macnss_auth.secret import Redacted, Secret

__all__ = [
    "CAN",
    "PIN",
    "PUK",
    "Mrz",
    "MrzCheckDigitError",
    "MrzFormat",
    "MrzKey",
    "bac_key_seed",
    "check_digit",
    "parse_mrz",
]

_WEIGHTS = (7, 3, 1)
_CHARSET = re.compile(r"[0-9A-Z<]*")
_DATE = re.compile(r"[0-9<]{6}")


class MrzCheckDigitError(MalformedInput):
    """A check digit does not match its field; ``field`` names which one."""


def _value(char: str) -> int:
    if "0" <= char <= "9":
        return ord(char) - ord("0")
    if "A" <= char <= "Z":
        return ord(char) - ord("A") + 10
    if char == "<":
        return 0
    raise MalformedInput("character outside the MRZ alphabet", field="check_digit")


def check_digit(value: str) -> int:
    """The ICAO 9303-3 §4.9 check digit of ``value``.

    >>> check_digit("520727")
    3

    Raises:
        MalformedInput: a character outside ``0-9 A-Z <``.
    """
    if not isinstance(value, str):
        raise TypeError("value must be str")
    return sum(_value(c) * _WEIGHTS[i % 3] for i, c in enumerate(value)) % 10


def _verify(value: str, digit: str, field: str, *, filler_ok: bool = False) -> None:
    if filler_ok and digit == "<" and set(value) <= {"<"}:
        return
    if not digit.isdigit() or int(digit) != check_digit(value):
        raise MrzCheckDigitError(f"check digit of {field} does not match", field=field)


def _clean(value: str, field: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{field} must be str")
    value = value.strip().upper()
    if not _CHARSET.fullmatch(value):
        raise MalformedInput(f"{field} has characters outside the MRZ alphabet", field=field)
    return value


def _clean_number(value: str) -> str:
    return _clean(value, "document_number")


def _clean_date(value: str) -> str:
    # The field name is checked again (with its name) in MrzKey's post-init.
    return _clean(value, "date")


@attrs.frozen(repr=False, eq=False)
class MrzKey(Redacted):
    """The three MRZ fields that BAC and PACE derive their keys from.

    Attributes:
        document_number: as printed, without check digit (``<`` fillers optional).
        date_of_birth: ``YYMMDD``.
        date_of_expiry: ``YYMMDD``.
    """

    document_number: str = attrs.field(converter=_clean_number)
    date_of_birth: str = attrs.field(converter=_clean_date)
    date_of_expiry: str = attrs.field(converter=_clean_date)

    def __attrs_post_init__(self) -> None:
        number = self.document_number.rstrip("<")
        if not number or len(number) > 22:
            raise MalformedInput(
                "document number must have 1 to 22 characters", field="document_number"
            )
        for field in ("date_of_birth", "date_of_expiry"):
            if not _DATE.fullmatch(getattr(self, field)):
                raise MalformedInput(f"{field} must be YYMMDD", field=field)

    @property
    def information(self) -> bytes:
        """The MRZ information (ASCII): number, dates, each with its check digit."""
        number = self.document_number.rstrip("<").ljust(9, "<")
        text = "".join(
            field + str(check_digit(field))
            for field in (number, self.date_of_birth, self.date_of_expiry)
        )
        return text.encode("ascii")

    def key_seed(self) -> bytes:
        """``SHA-1(MRZ information)``, 20 bytes: the PACE password for an MRZ."""
        return hashlib.sha1(self.information).digest()  # noqa: S324 (mandated by 9303-11)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MrzKey):
            return NotImplemented
        return hmac.compare_digest(self.information, other.information)

    # Defining __eq__ sets __hash__ to None; keep the explicit refusal.
    __hash__ = Redacted.__hash__


def bac_key_seed(key: MrzKey) -> bytes:
    """BAC's ``K_seed``: the first 16 bytes of ``SHA-1(MRZ information)`` (9303-11 §9.7.2)."""
    return key.key_seed()[:16]


@attrs.frozen(repr=False, eq=False)
class CAN(Redacted):
    """A card access number: six digits printed on the card, a PACE password.

    Attributes:
        value: the digits.
    """

    value: str = attrs.field()

    @value.validator
    def _check(self, _attribute: attrs.Attribute[str], value: object) -> None:
        if not isinstance(value, str):
            raise TypeError("CAN must be str")
        if not re.fullmatch(r"[0-9]{6}", value):
            raise MalformedInput("a CAN is six digits", field="can")

    def to_bytes(self) -> bytes:
        """The PACE password: the digits in ASCII (ICAO 9303-11 §4.4.1)."""
        return self.value.encode("ascii")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CAN):
            return NotImplemented
        return hmac.compare_digest(self.to_bytes(), other.to_bytes())

    # Defining __eq__ sets __hash__ to None; keep the explicit refusal.
    __hash__ = Redacted.__hash__


class _Digits(Redacted):
    """A secret PACE password made of digits, held as a :class:`~macnss_auth.secret.Secret`."""

    __slots__ = ("_secret",)
    _pattern: re.Pattern[str]
    _what: str
    _field: str

    def __init_subclass__(cls, *, length: tuple[int, int], **kwargs: object) -> None:
        # ``class PIN(_Digits, length=(4, 12))``: the rule, its message and the
        # error's field all follow from the name and the length.
        super().__init_subclass__(**kwargs)
        shortest, longest = length
        cls._pattern = re.compile(f"[0-9]{{{shortest},{longest}}}")
        cls._what = f"a {cls.__name__} is {shortest} to {longest} digits"
        cls._field = cls.__name__.lower()

    def __init__(self, digits: str | Secret) -> None:
        if isinstance(digits, Secret):
            text = digits.reveal().decode("ascii", "replace")
        elif isinstance(digits, str):
            text = digits
        else:
            raise TypeError(f"{type(self).__name__} must be str or Secret")
        if not self._pattern.fullmatch(text):
            # The message names the rule, never the value.
            raise MalformedInput(self._what, field=self._field)
        self._secret = Secret(text.encode("ascii"))

    @property
    def secret(self) -> Secret:
        """The digits as a :class:`~macnss_auth.secret.Secret`."""
        return self._secret

    def to_bytes(self) -> bytes:
        """The PACE password: the digits in ASCII (BSI TR-03110-2 §3.2, as for the CAN)."""
        return self._secret.reveal()

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Digits)  # noqa: S101 (the type check above)
        return self._secret == other._secret

    # Defining __eq__ sets __hash__ to None; keep the explicit refusal.
    __hash__ = Redacted.__hash__

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"{type(self).__name__} cannot be pickled")


class PIN(_Digits, length=(4, 12)):
    """A personal identification number: 4 to 12 digits the holder knows, PACE password 3.

    Unlike the CAN it is a secret: its ``repr`` is redacted, it compares in
    constant time, and it cannot be pickled or hashed.

    >>> PIN("123456")
    PIN(<redacted>)
    """

    __slots__ = ()


class PUK(_Digits, length=(8, 12)):
    """A personal unblocking key: 8 to 12 digits, PACE password 4; it unblocks the PIN.

    >>> PUK("1234567890")
    PUK(<redacted>)
    """

    __slots__ = ()


class MrzFormat(enum.Enum):
    """The three MRZ layouts and their (lines, line length)."""

    TD1 = (3, 30)
    TD2 = (2, 36)
    TD3 = (2, 44)

    @property
    def lines(self) -> int:
        """Number of lines."""
        return self.value[0]

    @property
    def width(self) -> int:
        """Characters per line."""
        return self.value[1]


@attrs.frozen(repr=False)
class Mrz:
    """A parsed and verified machine readable zone.

    Text fields keep the MRZ's ``<`` fillers except names, where ``<`` becomes a space.
    """

    format: MrzFormat
    document_code: str
    issuing_state: str
    document_number: str
    date_of_birth: str
    sex: str
    date_of_expiry: str
    nationality: str
    optional_data: str
    optional_data_2: str
    primary_identifier: str
    secondary_identifier: str

    @property
    def key(self) -> MrzKey:
        """The BAC/PACE key fields."""
        return MrzKey(self.document_number, self.date_of_birth, self.date_of_expiry)

    def __repr__(self) -> str:
        return f"Mrz(format={self.format.name}, <redacted>)"


def _names(zone: str) -> tuple[str, str]:
    primary, _, secondary = zone.partition("<<")
    return primary.replace("<", " ").strip(), secondary.replace("<", " ").strip()


def _document_number(number: str, digit: str, optional: str) -> tuple[str, str]:
    """Apply the long-number rule; return ``(document number, remaining optional data)``."""
    if digit != "<":
        _verify(number, digit, "document_number")
        return number.rstrip("<"), optional
    extension = optional.split("<", 1)[0]
    if len(extension) < 2:
        raise MrzCheckDigitError(
            "document number check digit missing (long-number rule)", field="document_number"
        )
    full = number + extension[:-1]
    _verify(full, extension[-1], "document_number")
    return full, optional[len(extension) :]


def _split_lines(text: str) -> tuple[MrzFormat, list[str]]:
    if not isinstance(text, str):
        raise TypeError("MRZ must be str")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    joined = "".join(lines)
    if len(joined) > 200 or not _CHARSET.fullmatch(joined):
        raise MalformedInput("MRZ has characters outside 0-9 A-Z <", field="mrz")
    for fmt in MrzFormat:
        one_line = len(lines) == 1 and len(joined) == fmt.lines * fmt.width
        per_line = len(lines) == fmt.lines and all(len(x) == fmt.width for x in lines)
        if one_line or per_line:
            return fmt, [joined[i * fmt.width : (i + 1) * fmt.width] for i in range(fmt.lines)]
    raise MalformedInput("not a TD1, TD2 or TD3 machine readable zone", field="mrz")


def parse_mrz(text: str) -> Mrz:
    """Parse and verify an MRZ (lines separated by newlines, or concatenated).

    Every check digit is verified, the composite one included.

    Raises:
        MrzCheckDigitError: a check digit does not match (``field`` names it).
        MalformedInput: wrong length or characters.
    """
    fmt, lines = _split_lines(text)
    if fmt is MrzFormat.TD1:
        one, two, three = lines
        number, optional = _document_number(one[5:14], one[14], one[15:30])
        dob, dob_cd, sex, doe, doe_cd = two[0:6], two[6], two[7], two[8:14], two[14]
        nationality, optional_2 = two[15:18], two[18:29]
        composite, composite_cd = one[5:30] + two[0:7] + two[8:15] + two[18:29], two[29]
        names = three
        personal: tuple[str, str] | None = None
    elif fmt is MrzFormat.TD2:
        one, two = lines
        number, optional = _document_number(two[0:9], two[9], two[28:35])
        nationality = two[10:13]
        dob, dob_cd, sex, doe, doe_cd = two[13:19], two[19], two[20], two[21:27], two[27]
        optional_2 = ""
        composite, composite_cd = two[0:10] + two[13:20] + two[21:35], two[35]
        names = one[5:36]
        personal = None
    else:
        one, two = lines
        _verify(two[0:9], two[9], "document_number")
        number, optional = two[0:9].rstrip("<"), two[28:42]
        nationality = two[10:13]
        dob, dob_cd, sex, doe, doe_cd = two[13:19], two[19], two[20], two[21:27], two[27]
        optional_2 = ""
        composite, composite_cd = two[0:10] + two[13:20] + two[21:43], two[43]
        names = one[5:44]
        personal = (two[28:42], two[42])
    _verify(dob, dob_cd, "date_of_birth")
    _verify(doe, doe_cd, "date_of_expiry")
    if personal is not None:
        _verify(*personal, "personal_number", filler_ok=True)
    _verify(composite, composite_cd, "composite")
    primary, secondary = _names(names)
    return Mrz(
        format=fmt,
        document_code=one[0:2].rstrip("<"),
        issuing_state=one[2:5],
        document_number=number,
        date_of_birth=dob,
        sex=sex,
        date_of_expiry=doe,
        nationality=nationality,
        optional_data=optional,
        optional_data_2=optional_2,
        primary_identifier=primary,
        secondary_identifier=secondary,
    )

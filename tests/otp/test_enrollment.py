"""Provisioning URIs, QR codes and secrets."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from macnss_auth.errors import ConfigurationError, MalformedInput, UnsupportedAlgorithm
from macnss_auth.otp.enrollment import (
    OtpAlgorithm,
    OtpParameters,
    decode_base32_secret,
    encode_base32_secret,
    provisioning_uri,
)
from macnss_auth.secret import Secret
from macnss_auth.testing import FixedClock

from .otp_helpers import SECRET, T0, hotp_code, make_hotp, make_totp, totp_code


def test_totp_uri_names_every_parameter() -> None:
    uri = provisioning_uri(
        method="totp",
        secret=Secret(SECRET),
        issuer="CNSS Maroc",
        account="alice@example.ma",
        parameters=OtpParameters(),
    )
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth"
    assert parts.netloc == "totp"
    assert unquote(parts.path) == "/CNSS Maroc:alice@example.ma"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query == {
        "secret": "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
        "issuer": "CNSS Maroc",
        "algorithm": "SHA1",
        "digits": "6",
        "period": "30",
    }


@pytest.mark.parametrize("algorithm", ["SHA1", "SHA256", "SHA512"])
@pytest.mark.parametrize(("digits", "period"), [(6, 30), (8, 60), (7, 15)])
def test_pyotp_reads_our_uris_and_computes_the_same_codes(
    algorithm: str, digits: int, period: int
) -> None:
    clock = FixedClock.at(T0)
    params = OtpParameters(algorithm=algorithm, digits=digits, period=period)
    totp = make_totp(clock, parameters=params)
    provisioning = totp.enroll("alice")
    parsed = pyotp.parse_uri(provisioning.uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert (parsed.digits, parsed.interval, parsed.issuer, parsed.name) == (
        digits,
        period,
        "CNSS",
        "alice",
    )
    code = parsed.at(T0)
    assert code == totp_code(
        provisioning.secret.reveal(), T0, algorithm=algorithm, digits=digits, period=period
    )
    assert totp.confirm("alice", code).subject == "alice"


def test_hotp_uri_carries_the_counter() -> None:
    hotp = make_hotp(FixedClock.at(T0))
    provisioning = hotp.enroll("alice", secret=SECRET, counter=7)
    parsed = pyotp.parse_uri(provisioning.uri)
    assert isinstance(parsed, pyotp.HOTP)
    assert parsed.initial_count == 7
    assert parsed.at(0) == hotp_code(SECRET, 7)


def test_account_and_issuer_are_escaped_and_colons_refused() -> None:
    uri = provisioning_uri(
        method="totp",
        secret=Secret(SECRET),
        issuer="Caisse & Co",
        account="محمد",
        parameters=OtpParameters(),
    )
    assert " " not in uri
    assert "&issuer=Caisse%20%26%20Co" in uri
    assert pyotp.parse_uri(uri).name == "محمد"
    for issuer, account in (("a:b", "alice"), ("CNSS", "x:y"), ("", "alice")):
        with pytest.raises(ConfigurationError):
            provisioning_uri(
                method="totp",
                secret=Secret(SECRET),
                issuer=issuer,
                account=account,
                parameters=OtpParameters(),
            )
    with pytest.raises(ConfigurationError):
        provisioning_uri(
            method="sms",
            secret=Secret(SECRET),
            issuer="CNSS",
            account="alice",
            parameters=OtpParameters(),
        )


@pytest.mark.slow
@given(issuer=st.text(max_size=30), account=st.text(max_size=30))
@example(issuer="CNSS", account="\ud800")  # a lone surrogate: quote() raised UnicodeEncodeError
def test_any_issuer_and_account_give_a_uri_or_a_configuration_error(
    issuer: str, account: str
) -> None:
    try:
        uri = provisioning_uri(method="totp", secret=Secret(SECRET), issuer=issuer,
                               account=account, parameters=OtpParameters())  # fmt: skip
    except ConfigurationError:
        return
    assert pyotp.parse_uri(uri).name == account


def test_enrolling_a_surrogate_account_name_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="account name"):
        make_totp(FixedClock.at(T0)).enroll("amina", account="amina\ud800@example.ma")


def test_qr_code_renderings() -> None:
    provisioning = make_totp(FixedClock.at(T0)).enroll("alice")
    svg = provisioning.qr_svg()
    root = ET.fromstring(svg)  # noqa: S314 (our own output)
    assert root.tag.endswith("svg")
    png = provisioning.qr_png(scale=2)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    text = provisioning.qr_terminal()
    lines = text.strip("\n").splitlines()
    assert len(lines) > 10
    assert set("".join(lines)) <= {"█", "▀", "▄", " "}
    code = provisioning.qr_code()
    assert not code.is_micro
    assert code.error == "M"
    # The QR code encodes the URI and nothing else.
    assert provisioning.secret_base32 not in svg
    assert provisioning.manual_entry_key.replace(" ", "") == provisioning.secret_base32


def test_algorithms() -> None:
    assert OtpAlgorithm.parse("sha-256") is OtpAlgorithm.SHA256
    assert OtpAlgorithm.SHA512.secret_bytes == 64
    with pytest.raises(UnsupportedAlgorithm):
        OtpAlgorithm.parse("MD5")
    with pytest.raises(UnsupportedAlgorithm):
        OtpParameters(algorithm="SHA3")


@given(st.binary(min_size=16, max_size=80))
def test_base32_round_trip(raw: bytes) -> None:
    text = encode_base32_secret(Secret(raw))
    assert "=" not in text
    assert decode_base32_secret(text).reveal() == raw
    assert decode_base32_secret(text.lower()).reveal() == raw
    spaced = " ".join(text[i : i + 4] for i in range(0, len(text), 4))
    assert decode_base32_secret(spaced).reveal() == raw


@given(st.text(max_size=200))
def test_base32_parser_raises_only_malformed_input(text: str) -> None:
    try:
        secret = decode_base32_secret(text)
    except MalformedInput as exc:
        assert exc.field == "secret"  # noqa: PT017 (the field is the point here)
    else:
        assert len(secret) >= 16


def test_short_base32_is_refused() -> None:
    with pytest.raises(MalformedInput, match="128 bits"):
        decode_base32_secret(base64.b32encode(b"x" * 15).decode())

"""Fuzzing certificates and keys from real issuers: parse, then use, with typed errors only.

:mod:`tests.nfc.lds.test_fuzz` mutates test-PKI files and stops at parsing.
Here the seeds are real CSCA and master-list-signer certificates from the
German and Dutch master lists (RSA, RSA-PSS, ECDSA on named and on
explicit brainpool parameters), mutated (bit flips, cuts, DER length
lies up to 2**31) and then *used*: the key rebuilt for cryptography and on
its standardized curve, the certificate's signature checked against itself,
the certificate trusted. A second generator writes explicit EC domain
parameters (RFC 3279 §2.3.5) field by field, with values no curve has
(p of 0, 1 or negative, orders and cofactors of 0, points off the curve),
into a SubjectPublicKeyInfo and into a DG14 ChipAuthenticationPublicKeyInfo.
``HYPOTHESIS_PROFILE=long`` (``make fuzz``) runs them with its budget.
"""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from asn1crypto import core, keys, x509
from hypothesis import example, given, settings
from hypothesis import strategies as st

from macnss_auth.errors import MacnssAuthError
from macnss_auth.nfc import lds, pki
from macnss_auth.nfc.card import issue_card
from macnss_auth.nfc.chip_auth import chip_public_key
from macnss_auth.nfc.domain_params import curve_by_name
from macnss_auth.nfc.securityinfos import ChipAuthenticationPublicKeyInfo, parse_security_infos
from macnss_auth.nfc.tlv import encode_tlv
from macnss_auth.nfc.verify.active import verify_active_authentication
from macnss_auth.testing import FixedClock
from tests.nfc.der_edits import reencoded
from tests.nfc.explicit_ec import explicit_spki

from .conftest import VECTORS

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)


def _real_certificates() -> list[bytes]:
    """One certificate per (key algorithm, curve, signature scheme) in the two real lists."""
    chosen: dict[tuple[object, ...], bytes] = {}
    for name in ("DE_ML_2026-05-28-08-28-45.ml", "NL_ML_2026-07-22.ml"):
        listed = pki.parse_master_list((VECTORS / "masterlists" / name).read_bytes())
        signer = listed.signer
        for cert in (*listed.certificates, *([signer] if signer is not None else [])):
            key = cert.public_key
            explicit = key.ec_parameters is not None
            kind = (key.algorithm, key.curve, explicit, cert.signature_scheme_der)
            chosen.setdefault(kind, cert.der)
    return list(chosen.values())


SEEDS = _real_certificates()


def _use_certificate(der: bytes) -> None:
    cert = pki.parse_certificate(der)
    repr(cert)  # what parses can be logged
    repr(cert.public_key)
    cert.valid_at(NOW)
    for use in (
        cert.public_key.to_cryptography,
        cert.public_key.ec_public_key,
        lambda: cert.verify_issued_by(cert),
        lambda: pki.TrustStore().add_csca(cert),
        lambda: pki.parse_public_key_info(cert.public_key.der),
    ):
        with contextlib.suppress(MacnssAuthError):
            use()


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "length", "huge"]))
        position = draw(st.integers(0, len(data) - 1)) if data else 0
        if kind == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[position:]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "length" and data:
            data[position] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0x81, 0x82, 0x84, 0xFF]))
        else:
            # A long-form length claiming about 2**31 bytes: must fail fast, not allocate.
            data[position:position] = b"\x84\x7f\xff\xff\xff"
    return bytes(data)


def test_the_seeds_cover_the_real_key_kinds() -> None:
    kinds = {(c.public_key.algorithm, c.public_key.ec_parameters is not None)
             for c in map(pki.parse_certificate, SEEDS)}  # fmt: skip
    assert {("rsa", False), ("ec", True)} <= kinds
    assert len(SEEDS) >= 5


@pytest.mark.slow
@settings(deadline=None)
@given(_mutated())
def test_mutated_real_certificates_are_used_or_refused(der: bytes) -> None:
    with contextlib.suppress(MacnssAuthError):
        _use_certificate(der)


@pytest.mark.slow
@settings(deadline=None)
@given(reencoded(SEEDS))
def test_reencoded_real_certificates_are_used_or_refused(der: bytes) -> None:
    # The DER rebuilt around a 2 KB INTEGER (serial, modulus, curve parameter), a long
    # OID arc, deep nesting, a duplicated or dropped element (tests/nfc/der_edits.py).
    with contextlib.suppress(MacnssAuthError):
        _use_certificate(der)


@pytest.mark.parametrize("salt", [2**16000, 2**64, -1], ids=["2kB", "2^64", "negative"])
def test_a_pss_salt_length_out_of_range_is_malformed(salt: int) -> None:
    # A 2 KB salt length made cryptography raise OverflowError while verifying.
    pss = next(c for c in map(pki.parse_certificate, SEEDS) if c.signature_scheme().pss_salt_length)
    cert = x509.Certificate.load(pss.der)
    cert["signature_algorithm"]["parameters"]["salt_length"] = salt
    edited = pki.parse_certificate(cert.dump(force=True))
    with pytest.raises(pki.PkiFormatError, match="salt"):
        edited.verify_issued_by(edited)


def test_huge_integers_in_a_certificate_and_a_key_have_a_repr() -> None:
    # repr() of a certificate with a 2 KB serial number, or of a key with a 2 KB RSA
    # exponent, raised ValueError (str() of an int past 4300 digits): logging one failed.
    cert = x509.Certificate.load(SEEDS[0])
    cert["tbs_certificate"]["serial_number"] = 10**5000
    parsed = pki.parse_certificate(cert.dump(force=True))
    assert "16610-bit integer" in repr(parsed)
    rsa = next(c for c in map(pki.parse_certificate, SEEDS) if c.public_key.algorithm == "rsa")
    spki = keys.PublicKeyInfo.load(rsa.public_key.der)
    spki["public_key"] = keys.RSAPublicKey({"modulus": 3 * 10**600, "public_exponent": 10**5000})
    key = pki.parse_public_key_info(spki.dump(force=True))
    assert "-bit integer" in repr(key)


def _security_files() -> list[bytes]:
    """DG14 and DG15 of the BSI specimen and of cards of each key kind (ECDH, DH, RSA AA)."""
    files = [(VECTORS / "bsi2008" / f"Datagroup{n}.bin").read_bytes() for n in (14, 15)]
    for profile in ("cnie", "legacy-dh", "passport-bac"):
        card = issue_card(profile, clock=FixedClock.at(NOW.timestamp()))
        files += [
            f.data for p, f in card.data.files.files().items() if p.endswith(("/DG14", "/DG15"))
        ]
    return files


SECURITY_FILES = _security_files()


@pytest.mark.slow
@settings(deadline=None)
@given(reencoded(SECURITY_FILES), st.binary(max_size=300))
def test_reencoded_dg14_and_dg15_are_used_or_refused(data: bytes, signature: bytes) -> None:
    with contextlib.suppress(MacnssAuthError):
        parsed = lds.parse_dg14(data)
        repr(parsed)  # what parses can be logged
        for info in parsed.infos:
            repr(info)
        for info in parsed.chip_authentication_keys:
            with contextlib.suppress(MacnssAuthError):
                repr(chip_public_key(info))
    with contextlib.suppress(MacnssAuthError):
        key = lds.parse_dg15(data).public_key
        repr(key)
        verify_active_authentication(key, bytes(8), signature)


# Explicit domain parameters, field by field -----------------------------------------------
ECDSA_SHA256 = pki.SignatureScheme(pki.SignatureKind.ECDSA, pki.HashAlgorithm.SHA256)
P256 = curve_by_name("secp256r1")
BP256 = curve_by_name("brainpoolP256r1")
_INTS = st.sampled_from([0, 1, 2, 3, -1, -5, P256.p, P256.n, BP256.p, P256.p + 1]) | st.integers(
    -(2**300), 2**300
)


@st.composite
def _explicit(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(a SubjectPublicKeyInfo with explicit parameters, its public point)."""
    curve = draw(st.sampled_from([P256, BP256]))
    p = draw(st.sampled_from([curve.p, curve.p, 0, 1, 2, 3, -7, 2**521 - 1]) | _INTS)
    size = max((p.bit_length() + 7) // 8, 1)
    a = draw(st.sampled_from([curve.a, 0, p - 3]) | _INTS)
    b = draw(st.sampled_from([curve.b, 0, 7]) | _INTS)
    gx, gy = draw(st.sampled_from([(curve.gx, curve.gy), (0, 0), (1, 2)]))
    # Coordinates as long as p says, so the base point passes its length check.

    def encode(value: int) -> bytes:
        return (value % (1 << (8 * size))).to_bytes(size, "big")

    base = draw(st.sampled_from([b"\x04" + encode(gx) + encode(gy), b"\x04", b"\x02"]))
    n = draw(st.sampled_from([curve.n, 0, 1, -1]) | _INTS)
    h = draw(st.sampled_from([1, 0, 4, -1, 2**70]))
    point = draw(
        st.sampled_from([b"\x04" + encode(gx) + encode(gy), b"\x00", b"\x04"])
        | st.binary(max_size=70)
    )

    def signed(value: int) -> bytes:
        return value.to_bytes((value.bit_length() + 8) // 8 or 1, "big", signed=True)

    spki = explicit_spki(p=p, a=signed(a), b=signed(b), base=base, order=n, cofactor=h, point=point)
    return spki, point


def _ca_key_info(spki: bytes) -> bytes:
    """DG14 content (SecurityInfos) with one id-PK-ECDH ChipAuthenticationPublicKeyInfo."""
    oid = core.ObjectIdentifier("0.4.0.127.0.7.2.2.1.2").dump()
    return encode_tlv(0x31, encode_tlv(0x30, oid + spki + core.Integer(1).dump()))


# p = 0 passed the base point's length check (0 coordinate bytes) and then divided by p.
_P_ZERO = explicit_spki(p=0, a=b"\x01", b=b"\x01", base=b"\x04", order=5, cofactor=1, point=b"\x04")


def test_a_field_prime_of_zero_is_malformed() -> None:
    # Was ZeroDivisionError (matching the parameters to a curve reduced a modulo p).
    with pytest.raises(pki.PkiFormatError, match="prime"):
        pki.parse_public_key_info(_P_ZERO)


@pytest.mark.slow
@settings(deadline=None)
@given(_explicit(), st.binary(max_size=80))
@example((_P_ZERO, b"\x04"), b"")
def test_explicit_parameters_are_used_or_refused(
    explicit: tuple[bytes, bytes], signature: bytes
) -> None:
    spki, _ = explicit
    with contextlib.suppress(MacnssAuthError):
        info = pki.parse_public_key_info(spki)
        for use in (
            info.to_cryptography,
            info.ec_public_key,
            lambda: pki.verify_signature(info, ECDSA_SHA256, b"data", signature),
        ):
            with contextlib.suppress(MacnssAuthError):
                use()
    with contextlib.suppress(MacnssAuthError):
        (ca_info,) = parse_security_infos(_ca_key_info(spki))
        assert isinstance(ca_info, ChipAuthenticationPublicKeyInfo)
        chip_public_key(ca_info)

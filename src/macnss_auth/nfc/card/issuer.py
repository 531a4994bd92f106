"""The issuer: a test PKI and personalized virtual cards, genuine, cloned or forged.

:func:`issue_card` builds what a document issuer writes into a chip:

* DG1 (TD1 or TD3 MRZ), DG2 (a generated JPEG face in an ISO/IEC 19794-5
  record), DG7 (a signature image), DG11 (full name in Latin script, the name
  in Arabic script as an "other name", place of birth, address), DG12
  (issuing authority, date of issue), DG14 (Chip Authentication key, PACE
  and Active Authentication infos), DG15 (Active Authentication key);
* EF.COM and EF.SOD (signed by the test PKI's document signer);
* EF.CardAccess and EF.CardSecurity for PACE cards.

It uses the library's LDS encoders and :mod:`macnss_auth.nfc.card.issuing_pki`. The
trust anchors a verifier needs are the CSCA certificate and the signed master
list on :class:`IssuedCard`.

Copies and fakes, for testing verifiers:

* :func:`clone_card`: the same files, no private keys -- passive
  authentication still passes, but Active and Chip Authentication cannot.
* :func:`forge_card`: a data group edited after signing (the name in DG1 by
  default) -- its hash no longer matches EF.SOD.
"""

from __future__ import annotations

import datetime as dt
import secrets

import attrs
from asn1crypto import core
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from macnss_auth.clock import Clock
from macnss_auth.errors import ConfigurationError
from macnss_auth.nfc import securityinfos as si
from macnss_auth.nfc.card.filesystem import (
    EF_ATR_INFO,
    EF_CARD_SECURITY,
    LDS1_AID,
    Access,
    ElementaryFile,
    emrtd_file_system,
)
from macnss_auth.nfc.card.issuing_pki import TestPki, generate_key, make_td1_mrz, sign_cms
from macnss_auth.nfc.card.jpeg import face_jpeg, signature_jpeg
from macnss_auth.nfc.card.model import (
    AaKeyKind,
    CardData,
    CardProfile,
    ChipSecrets,
    DocumentKind,
    PasswordKind,
)
from macnss_auth.nfc.card.profiles import profile as standard_profile
from macnss_auth.nfc.chip_auth import DhPrivateKey, DhPublicKey
from macnss_auth.nfc.domain_params import BRAINPOOLP256R1, DHGroup, DomainParameterId, standardized
from macnss_auth.nfc.ec import Curve
from macnss_auth.nfc.eckeys import EcPrivateKey, native_curve
from macnss_auth.nfc.lds import (
    encode_com,
    encode_dg1,
    encode_dg2,
    encode_dg7,
    encode_dg11,
    encode_dg12,
    encode_dg14,
    encode_dg15,
    image_dimensions,
)
from macnss_auth.nfc.lds.security import OID_SECURITY_OBJECT
from macnss_auth.nfc.lds.sod import (
    OID_LDS_SECURITY_OBJECT,
    encode_lds_security_object,
    encode_sod,
)
from macnss_auth.nfc.mrz import check_digit
from macnss_auth.nfc.pki import OID_STANDARDIZED_DOMAIN_PARAMETERS
from macnss_auth.nfc.tlv import encode_tlv, parse_all, parse_one

__all__ = [
    "IssuedCard",
    "Person",
    "clone_card",
    "forge_card",
    "issue_card",
    "make_td3_mrz",
    "mrz_information",
]

# ecdsa-with-SHA256 (RFC 5758 §3.2), announced in DG14 for ECDSA Active Authentication.
_ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"
_CA_KEY_ID = 1


@attrs.frozen
class Person:
    """The holder printed on a test card (invented data)."""

    surname: str = "BENANI"
    given_names: str = "FATIMA ZAHRA"
    surname_arabic: str = "بناني"
    given_names_arabic: str = "فاطمة الزهراء"
    document_number: str = "AB1234567"
    date_of_birth: str = "900115"
    date_of_expiry: str = "350101"
    sex: str = "F"
    nationality: str = "MAR"
    issuing_state: str = "MAR"
    place_of_birth: str = "CASABLANCA"
    address: str = "12 RUE DES ORANGERS\nRABAT"
    personal_number: str = "BE123456"
    issuing_authority: str = "DGSN"


#: The largest command and response this chip announces when it takes extended length.
_EXTENDED_LIMIT = 4352


def make_td3_mrz(person: Person) -> str:
    """A passport MRZ (two lines of 44, ICAO 9303-4) with correct check digits."""
    name = f"{person.surname}<<{person.given_names}".replace(" ", "<")
    line1 = f"P<{person.issuing_state:<3}{name}".replace(" ", "<").ljust(44, "<")[:44]
    number = person.document_number.ljust(9, "<")[:9]
    personal = person.personal_number.ljust(14, "<")[:14]
    birth, expiry = person.date_of_birth, person.date_of_expiry
    line2 = (
        f"{number}{check_digit(number)}{person.nationality:<3}".replace(" ", "<")
        + f"{birth}{check_digit(birth)}{person.sex}{expiry}{check_digit(expiry)}"
        + f"{personal}{check_digit(personal)}"
    )
    composite = line2[0:10] + line2[13:20] + line2[21:43]
    return f"{line1}\n{line2}{check_digit(composite)}"


def mrz_information(person: Person) -> str:
    """Document number, date of birth, date of expiry, each with its check digit."""
    number = person.document_number.ljust(9, "<")
    return "".join(
        f"{field}{check_digit(field)}"
        for field in (number, person.date_of_birth, person.date_of_expiry)
    )


@attrs.frozen
class IssuedCard:
    """A personalized card and the PKI that signed it.

    Attributes:
        data: the card (files, profile, chip secrets).
        csca: the CSCA certificate (DER): the trust anchor.
        master_list: a CSCA master list (CMS, DER) holding the CSCA, signed by
            the PKI's master list signer.
        crl: the CSCA's current (empty) CRL.
        document_signer: the document signer certificate (DER), for verifiers
            of a card whose EF.SOD does not carry it.
    """

    data: CardData
    csca: bytes = attrs.field(repr=False)
    master_list: bytes = attrs.field(repr=False)
    crl: bytes = attrs.field(repr=False)
    document_signer: bytes = attrs.field(default=b"", repr=False)


def _spki(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _dg11(person: Person) -> bytes:
    base = encode_dg11(
        full_name=f"{person.surname}<<{person.given_names}".replace(" ", "<"),
        personal_number=person.personal_number,
        full_date_of_birth=("19" if person.date_of_birth[:2] > "30" else "20")
        + person.date_of_birth,
        place_of_birth=person.place_of_birth,
        address=person.address,
    )
    # The Arabic-script name travels as an "other name" (ICAO 9303-10 §4.7.11: A0 { 02 n, 5F0F }).
    outer, _ = parse_one(base)
    children = parse_all(outer.value)
    tag_list = children[0].value + b"\x5f\x0f"
    arabic = f"{person.surname_arabic}<<{person.given_names_arabic}".encode()
    others = encode_tlv(0xA0, encode_tlv(0x02, b"\x01") + encode_tlv(0x5F0F, arabic))
    body = encode_tlv(0x5C, tag_list) + b"".join(c.to_bytes() for c in children[1:]) + others
    return encode_tlv(0x6B, body)


ChipKey = ec.EllipticCurvePrivateKey | EcPrivateKey | DhPrivateKey


def _chip_key_group(profile: CardProfile) -> DHGroup | Curve:
    """The Chip Authentication key's group: as the profile says, else the PACE curve.

    Raises:
        ConfigurationError: a group that does not fit the CA protocol (ECDH on DH...).
        UnsupportedAlgorithm: a reserved domain parameter id.
    """
    if profile.chip_authentication_parameter_id is not None:
        group = standardized(profile.chip_authentication_parameter_id)
    elif profile.pace_parameter_id is not None and isinstance(
        standardized(profile.pace_parameter_id), Curve
    ):
        group = standardized(profile.pace_parameter_id)
    else:
        group = BRAINPOOLP256R1
    algorithm = profile.chip_authentication
    if algorithm is not None and algorithm.elliptic != isinstance(group, Curve):
        raise ConfigurationError(f"{algorithm.name} cannot use a key on {group.name}")
    return group


def _aa_ec_key(profile: CardProfile) -> ec.EllipticCurvePrivateKey | EcPrivateKey:
    """An ECDSA Active Authentication key: brainpoolP256r1, or the profile's curve.

    Raises:
        ConfigurationError: the profile names a DH group for an ECDSA key.
        UnsupportedAlgorithm: a reserved domain parameter id.
    """
    if profile.active_authentication_parameter_id is None:
        return ec.generate_private_key(ec.BrainpoolP256R1())
    group = standardized(profile.active_authentication_parameter_id)
    if not isinstance(group, Curve):
        raise ConfigurationError(f"an ECDSA Active Authentication key cannot use {group.name}")
    native = native_curve(group)
    return ec.generate_private_key(native) if native is not None else EcPrivateKey.generate(group)


def _chip_key(group: DHGroup | Curve) -> ChipKey:
    """A fresh CA key: cryptography's where it has the curve (keys save as PKCS#8), else ours."""
    if isinstance(group, DHGroup):
        x = secrets.randbelow(group.q - 2) + 2
        return DhPrivateKey(DhPublicKey(group.p, group.g, pow(group.g, x, group.p), group.q), x)
    native = native_curve(group)
    if native is not None:
        return ec.generate_private_key(native)
    return EcPrivateKey.generate(group)


def _chip_key_info(
    key: ChipKey, group: DHGroup | Curve, key_id: int
) -> si.ChipAuthenticationPublicKeyInfo:
    if isinstance(key, DhPrivateKey):
        # DH keys name their group by its standardized id (BSI TR-03110-3 §A.2.1.1).
        parameter_id = next(i for i in DomainParameterId if standardized(i) == group)
        algorithm = encode_tlv(
            0x30, _der_oid(OID_STANDARDIZED_DOMAIN_PARAMETERS) + _der_int(parameter_id)
        )
        body = b"\x00" + _der_int(key.public.y)
        spki = encode_tlv(0x30, algorithm + encode_tlv(0x03, body))
        return si.ChipAuthenticationPublicKeyInfo(si.PublicKeyOid.DH, spki, key_id)
    if isinstance(key, EcPrivateKey):
        spki = si.ec_subject_public_key_info(key.curve, key.public_key().encode())
    else:
        spki = _spki(key)
    return si.ChipAuthenticationPublicKeyInfo(si.PublicKeyOid.ECDH, spki, key_id)


def _der_oid(dotted: str) -> bytes:
    return bytes(core.ObjectIdentifier(dotted).dump())


def _der_int(value: int) -> bytes:
    return bytes(core.Integer(value).dump())


#: CardInfoLocator (BSI TR-03110-3 §A.1.1.9) and PrivilegedTerminalInfo (§A.1.1.8).
_ID_CI = "0.4.0.127.0.7.2.2.6"
_ID_PT = "0.4.0.127.0.7.2.2.8"


def _extra_pace_infos(real: si.PaceInfo) -> list[si.SecurityInfo]:
    """What a national ID card's EF.CardAccess offers besides the one PACE this chip runs.

    A GM variant on proprietary domain parameters (id 32, no PACEDomainParameterInfo:
    not usable), Integrated and DH Generic Mapping (usable but ranked lower), a
    CardInfoLocator, and a PrivilegedTerminalInfo whose nested SecurityInfos offer
    PACE-CAM for privileged terminals only.
    """
    nested = si.encode_security_infos([si.PaceInfo(si.PaceOid.ECDH_CAM_AES_CBC_CMAC_128, 2, 13)])
    privileged = encode_tlv(0x30, _der_oid(_ID_PT) + nested)
    locator = encode_tlv(
        0x30, _der_oid(_ID_CI) + encode_tlv(0x16, b"http://bsi.bund.de/cif/npa.xml")
    )
    return [
        si.PaceInfo(si.PaceOid.ECDH_GM_AES_CBC_CMAC_256, 2, 32),
        si.PaceInfo(si.PaceOid.ECDH_IM_AES_CBC_CMAC_128, 2, real.parameter_id),
        si.PaceInfo(si.PaceOid.DH_GM_AES_CBC_CMAC_128, 2, 0),
        si.UnknownSecurityInfo(_ID_CI, locator),
        si.UnknownSecurityInfo(_ID_PT, privileged),
    ]


def issue_card(
    profile: CardProfile | str,
    *,
    clock: Clock,
    person: Person | None = None,
    can: str | None = None,
    pin: str | None = None,
    puk: str | None = None,
    pki: TestPki | None = None,
    chip_authentication_version: int | None = None,
) -> IssuedCard:
    """Personalize a card for ``profile`` and sign it with ``pki`` (a new one if not given).

    Keys (PKI, AA, CA) come from ``cryptography``'s generators.
    ``chip_authentication_version=2`` issues the profile's chip with Chip
    Authentication version 2 (DG14 announces it; the chip answers with a nonce
    and a token), as :attr:`CardProfile.chip_authentication_version` does.

    Raises:
        ConfigurationError: an unknown profile, a CAN that is not six digits,
            a PIN that is not 4 to 12 digits or a PUK that is not 8 to 12, a CA
            version other than 1 or 2, or a CA version for a profile without CA.
    """
    card_profile = standard_profile(profile) if isinstance(profile, str) else profile
    if chip_authentication_version is not None:
        if card_profile.chip_authentication is None:
            raise ConfigurationError(f"profile {card_profile.name!r} has no Chip Authentication")
        card_profile = attrs.evolve(
            card_profile, chip_authentication_version=chip_authentication_version
        )
    person = person or Person()
    # isascii(): "²" and Arabic-Indic digits pass isdigit() but the card encodes the CAN as ASCII.
    if can is not None and (len(can) != 6 or not (can.isascii() and can.isdigit())):
        raise ConfigurationError("a CAN is six digits")
    if can is None and PasswordKind.CAN in card_profile.pace_passwords:
        can = "123456" if card_profile.pace_protocol is not None else None
    if pin is not None and not (4 <= len(pin) <= 12 and pin.isascii() and pin.isdigit()):
        raise ConfigurationError("a PIN is 4 to 12 digits")
    if puk is not None and not (8 <= len(puk) <= 12 and puk.isascii() and puk.isdigit()):
        raise ConfigurationError("a PUK is 8 to 12 digits")
    if pin is None and PasswordKind.PIN in card_profile.pace_passwords:
        pin = "246810"
    if puk is None and PasswordKind.PUK in card_profile.pace_passwords:
        puk = "1357924680"
    now = clock.now()
    pki = pki or TestPki.create(now=now, key_type="ec")
    if card_profile.document is DocumentKind.TD1:
        mrz = make_td1_mrz(
            document_number=person.document_number,
            date_of_birth=person.date_of_birth,
            date_of_expiry=person.date_of_expiry,
            surname=person.surname,
            given_names=person.given_names,
            sex=person.sex,
            issuing_state=person.issuing_state,
            nationality=person.nationality,
        )
    else:
        mrz = make_td3_mrz(person)
    face = face_jpeg()
    width, height = image_dimensions(face) or (0, 0)
    groups: dict[int, bytes] = {
        1: encode_dg1(mrz),
        2: encode_dg2(face, width=width, height=height),
        7: encode_dg7([signature_jpeg()]),
        11: _dg11(person),
        12: encode_dg12(
            issuing_authority=person.issuing_authority,
            date_of_issue=now.strftime("%Y%m%d"),
        ),
    }
    quirks = card_profile.quirks
    for number in quirks.missing_data_groups:
        groups.pop(number, None)
    if quirks.eac_data_groups:
        # Fingerprints and iris behind Terminal Authentication: an empty biometric group.
        empty = encode_tlv(0x7F61, encode_tlv(0x02, b"\x00"))
        groups[3] = encode_tlv(0x63, empty)
        groups[4] = encode_tlv(0x76, empty)
    aa_key: ec.EllipticCurvePrivateKey | EcPrivateKey | rsa.RSAPrivateKey | None = None
    ca_key: ChipKey | None = None
    key_id = _CA_KEY_ID + 1 if quirks.decoy_ca_key else _CA_KEY_ID
    dg14: list[si.SecurityInfo] = []
    card_security: list[si.SecurityInfo] = []
    pace_infos: list[si.SecurityInfo] = []
    if card_profile.pace_protocol is not None:
        pace_infos.append(
            si.PaceInfo(card_profile.pace_protocol, 2, card_profile.pace_parameter_id)
        )
    cam = (
        card_profile.pace_protocol is not None
        and card_profile.pace_protocol.mapping is si.Mapping.CHIP_AUTHENTICATION
    )
    if card_profile.chip_authentication is not None or cam:
        # PACE-CAM proves this same key, so it must live on the PACE curve.
        group = _chip_key_group(card_profile)
        ca_key = _chip_key(group)
        ca_infos: list[si.SecurityInfo] = [_chip_key_info(ca_key, group, key_id)]
        if quirks.decoy_ca_key:
            # A key the chip lists but does not hold: it refuses it (6A88).
            decoy = ec.generate_private_key(ec.SECP256R1())
            ca_infos.append(
                si.ChipAuthenticationPublicKeyInfo(si.PublicKeyOid.ECDH, _spki(decoy), _CA_KEY_ID)
            )
        if card_profile.chip_authentication is not None:
            oid = si.ChipAuthenticationOid(card_profile.chip_authentication.value)
            version = card_profile.chip_authentication_version
            ca_infos.append(si.ChipAuthenticationInfo(oid, version, key_id))
            if quirks.decoy_ca_key:
                ca_infos.append(si.ChipAuthenticationInfo(oid, version, _CA_KEY_ID))
        dg14 += ca_infos
        card_security += ca_infos
    if card_profile.active_authentication is AaKeyKind.RSA:
        aa_key = generate_key("rsa", bits=1024)
    elif card_profile.active_authentication is AaKeyKind.ECDSA:
        aa_key = _aa_ec_key(card_profile)
        if not quirks.aa_without_info:
            dg14.append(si.ActiveAuthenticationInfo(1, _ECDSA_WITH_SHA256))
    if isinstance(aa_key, EcPrivateKey):
        groups[15] = encode_dg15(
            si.ec_subject_public_key_info(aa_key.curve, aa_key.public_key().encode())
        )
    elif aa_key is not None:
        groups[15] = encode_dg15(_spki(aa_key))
    dg14 += pace_infos
    if dg14:
        groups[14] = encode_dg14(si.encode_security_infos(dg14))
    sod = _sign_sod(groups, pki, card_profile, now)
    listed = sorted(set(groups) | quirks.missing_data_groups)
    master: list[ElementaryFile] = []
    card_access = None
    if pace_infos:
        offered = list(pace_infos)
        if quirks.extra_pace_infos and isinstance(pace_infos[0], si.PaceInfo):
            offered += _extra_pace_infos(pace_infos[0])
        card_access = si.encode_security_infos(offered)
        security = sign_cms(
            OID_SECURITY_OBJECT,
            si.encode_security_infos(pace_infos + card_security),
            pki.ds,
            signing_time=now,
        )
        master.append(
            ElementaryFile("EF.CardSecurity", EF_CARD_SECURITY, 0x1D, security, Access.PACE)
        )
    if card_profile.extended_length:
        # ICAO 9303-10 §3.11.2: a chip that takes extended-length APDUs says so in
        # EF.ATR/INFO with DO'7F66' (largest command and response, in bytes).
        limits = encode_tlv(0x02, _EXTENDED_LIMIT.to_bytes(2, "big")) * 2
        master.append(
            ElementaryFile(
                "EF.ATR/INFO", EF_ATR_INFO, 0x01, encode_tlv(0x7F66, limits), Access.ALWAYS
            )
        )
    files = emrtd_file_system(
        com=encode_com(listed), data_groups=groups, sod=sod, card_access=card_access, master=master
    )
    secrets = ChipSecrets(
        mrz_information=mrz_information(person),
        can=can,
        pin=pin,
        puk=puk,
        aa_key=aa_key,
        ca_key=ca_key,
        ca_key_id=key_id if ca_key is not None else None,
    )
    return IssuedCard(
        data=CardData(card_profile, files, secrets),
        csca=pki.csca.der,
        master_list=pki.master_list(),
        crl=pki.crl(),
        document_signer=pki.ds.der,
    )


def _sign_sod(
    groups: dict[int, bytes], pki: TestPki, profile: CardProfile, now: dt.datetime
) -> bytes:
    """EF.SOD, with the profile's quirks: other digests, no DS certificate."""
    quirks = profile.quirks
    content = encode_lds_security_object(quirks.sod_hash, groups)
    return encode_sod(
        sign_cms(
            OID_LDS_SECURITY_OBJECT,
            content,
            pki.ds,
            hash_algorithm=quirks.sod_signature_hash or quirks.sod_hash,
            signing_time=now,
            include_certificate=not quirks.sod_without_certificate,
        )
    )


def clone_card(data: CardData) -> CardData:
    """A clone: every file copied, but no chip private keys (they never leave a real chip)."""
    return attrs.evolve(data, secrets=attrs.evolve(data.secrets, aa_key=None, ca_key=None))


def forge_card(data: CardData, *, name: str = "FORGED<<IDENTITY", data_group: int = 1) -> CardData:
    """A forgery: a data group edited after EF.SOD was signed.

    ``data_group=1`` rewrites the holder's name in the MRZ (keeping every
    check digit valid, as a careful forger would); other numbers flip the
    last byte of that data group.

    Raises:
        ConfigurationError: the card has no such data group.
    """
    path = f"{LDS1_AID.hex().upper()}/DG{data_group}"
    files = data.files.files()
    if path not in files:
        raise ConfigurationError(f"this card has no DG{data_group}")
    original = files[path].data
    if data_group == 1:
        outer, _ = parse_one(original)
        mrz = parse_one(outer.value)[0].value.decode("ascii")
        if len(mrz) == 90:  # TD1: the name is the third line
            forged = mrz[:60] + name.replace(" ", "<").ljust(30, "<")[:30]
        else:  # TD3: the name follows P<XXX on the first line
            forged = mrz[:5] + name.replace(" ", "<").ljust(39, "<")[:39] + mrz[44:]
        width = 30 if len(forged) == 90 else 44
        new = encode_dg1("\n".join(forged[i : i + width] for i in range(0, len(forged), width)))
    else:
        new = original[:-1] + bytes([original[-1] ^ 0x01])
    return attrs.evolve(data, files=data.files.replace_data(path, new))

"""Quirk profiles: virtual cards that behave like real chips reported in the field.

Each :class:`QuirkProfile` is a standard profile with :class:`CardQuirks`
switched on, the behaviour it models, where that behaviour was reported, and
the verdict a correct reader and verifier reach on it. They are issued like
any profile (``issue_card("wrong-le-6cxx", ...)``, ``macnss-auth card issue
--profile wrong-le-6cxx``) and read end to end in ``tests/nfc/card/test_quirks.py``.

====================  ==================================================================
profile               behaviour (source)
====================  ==================================================================
no-extended-length    announces extended length in EF.ATR/INFO, then answers a plain
                      6700 and drops secure messaging (NFCPassportReader #223, gmrtd #458)
short-reads-6282      at most 160 bytes per READ BINARY, 6282 when Le asked more
                      (NFCPassportReader #24 and #91)
wrong-le-6cxx         6Cxx with the right length when Le reaches past the end of a file
                      (NFCPassportReader #29)
get-response-61xx     long answers in pieces: 61xx, then GET RESPONSE in plain
                      (OpenSC #632, OpenSC PR #3768)
missing-dg-6a82       EF.COM lists DG12, the chip has no DG12 (NFCPassportReader #34,
                      AndroidPassportReader #7)
eac-dg3-dg4           DG3/DG4 answered 6982 without Terminal Authentication, and secure
                      messaging is gone after it (NFCPassportReader #22 and #165)
several-pace-infos    EF.CardAccess offers five PACE variants, a CardInfoLocator and a
                      PrivilegedTerminalInfo; DO'84' required (NFCPassportReader PR #269, #106)
pace-do84-refused     MSE:Set AT for PACE with DO'84' answered 6A80 (ICAO 9303-11 §4.4.4.1:
                      DO'84' is conditional; PaceTerminal's "a few old ones")
several-ca-keys       two CA keys with key ids, DO'84' required, the first one not on the
                      chip (ICAO 9303-11 §9.2.6; passport-reader PR #99)
ca-key-id-refused     one CA key with a key id, DO'84' answered 6A80 (NFCPassportReader PR #128)
ca-dh                 Chip Authentication on a 1024-bit DH group with MSE:Set KAT
                      (ICAO 9303-11 §6.2; eMRTD_face_access #3)
aa-ecdsa-der          ECDSA Active Authentication signature in DER, not plain r||s
                      (gmrtd #187, PR #188)
aa-not-supported      DG15 present, INTERNAL AUTHENTICATE answered 6D00 (irmamobile PR #672)
sod-mixed-digests     SOD hashes the data groups with SHA-1, signs with SHA-384
                      (pyHanko #242, passport-reader #51)
ds-not-in-sod         EF.SOD without the document signer certificate; it comes from a
                      store (ICAO 9303-10 §4.6.2.2; gmrtd #352 and #440)
plain-errors          refusals inside secure messaging come in plain and end the session
                      (NFCPassportReader #205; flipperzero-firmware PR #1866)
aa-hash-not-announced ECDSA AA key on P-384, signed with SHA-256, no ActiveAuthenticationInfo
                      in DG14 to say so (gmrtd PR #477)
====================  ==================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import attrs

from macnss_auth.nfc.card.model import CardProfile, CardQuirks
from macnss_auth.nfc.card.profiles import PROFILES
from macnss_auth.nfc.chip_auth import CaAlgorithm
from macnss_auth.nfc.domain_params import DomainParameterId
from macnss_auth.nfc.pki import HashAlgorithm

__all__ = ["QUIRK_PROFILES", "QuirkProfile"]


@attrs.frozen
class QuirkProfile:
    """A card profile modeled on a behaviour reported for real chips.

    Attributes:
        profile: the card profile (a standard one with quirks on).
        behaviour: what the chip does, in a sentence.
        source: where real-chip reports document it.
        genuine: the verdict a correct reader reaches (default policy, or the
            one in ``requires``).
        requires: the clone-resistance proof the verdict is taken under
            (``"either"``, ``"aa"``, ``"ca"``).
        data_groups: the data groups to ask for (the reader's default if empty).
        needs_document_signer: the verifier must be given the DS certificate.
    """

    profile: CardProfile
    behaviour: str
    source: str
    genuine: bool = True
    requires: str = "either"
    data_groups: tuple[int, ...] = ()
    needs_document_signer: bool = False


def _quirk(base: str, name: str, quirks: CardQuirks, **changes: object) -> CardProfile:
    return attrs.evolve(PROFILES[base], name=name, quirks=quirks, **changes)  # type: ignore[arg-type]


QUIRK_PROFILES: Mapping[str, QuirkProfile] = MappingProxyType(
    {
        quirk.profile.name: quirk
        for quirk in (
            QuirkProfile(
                _quirk("cnie", "no-extended-length", CardQuirks(refuse_extended_length=True)),
                "announces extended length in EF.ATR/INFO, then answers an extended READ BINARY "
                "with a plain 6700 and drops secure messaging",
                "AndyQ/NFCPassportReader#223; gmrtd/gmrtd#458",
            ),
            QuirkProfile(
                _quirk("passport-bac", "short-reads-6282", CardQuirks(max_read=160)),
                "returns at most 160 bytes per READ BINARY, 6282 when Le asked for more",
                "AndyQ/NFCPassportReader#24, #91",
            ),
            QuirkProfile(
                _quirk("passport-bac", "wrong-le-6cxx", CardQuirks(wrong_le=True)),
                "answers 6Cxx (xx: the bytes left) when Le reaches past the end of a file",
                "AndyQ/NFCPassportReader#29",
            ),
            QuirkProfile(
                _quirk("passport-bac", "get-response-61xx", CardQuirks(get_response_chunk=100)),
                "sends answers over 100 bytes in pieces with 61xx; GET RESPONSE travels in plain",
                "OpenSC/OpenSC#632; OpenSC/OpenSC PR #3768",
            ),
            QuirkProfile(
                _quirk(
                    "cnie", "missing-dg-6a82", CardQuirks(missing_data_groups=frozenset({12, 13}))
                ),
                "EF.COM lists DG12 and DG13, the chip has neither (6A82)",
                "AndyQ/NFCPassportReader#34; jllarraz/AndroidPassportReader#7",
                data_groups=(1, 2, 11, 12, 13, 14, 15),
            ),
            QuirkProfile(
                _quirk(
                    "passport-bac",
                    "eac-dg3-dg4",
                    CardQuirks(eac_data_groups=True, drop_session_on_refusal=True),
                ),
                "DG3/DG4 answered 6982 without Terminal Authentication; secure messaging ends",
                "AndyQ/NFCPassportReader#22, #165",
                data_groups=(1, 2, 3, 4, 14, 15),
            ),
            QuirkProfile(
                _quirk(
                    "cnie",
                    "several-pace-infos",
                    CardQuirks(extra_pace_infos=True, pace_requires_parameter_id=True),
                ),
                "EF.CardAccess offers five PACE variants, a CardInfoLocator and a "
                "PrivilegedTerminalInfo; MSE:Set AT without DO'84' is refused",
                "AndyQ/NFCPassportReader PR #269, PR #106",
            ),
            QuirkProfile(
                _quirk("cnie", "pace-do84-refused", CardQuirks(pace_refuses_parameter_id=True)),
                "MSE:Set AT for PACE with DO'84' answered 6A80",
                "ICAO 9303-11 §4.4.4.1 (DO'84' conditional)",
            ),
            QuirkProfile(
                _quirk(
                    "cnie",
                    "several-ca-keys",
                    CardQuirks(decoy_ca_key=True, ca_requires_key_reference=True),
                ),
                "DG14 lists two CA keys with key ids (the chip holds key 2 only); "
                "MSE:Set AT without DO'84' is refused",
                "ICAO 9303-11 §9.2.6; tananaev/passport-reader PR #99",
                requires="ca",
            ),
            QuirkProfile(
                _quirk("cnie", "ca-key-id-refused", CardQuirks(ca_refuses_key_reference=True)),
                "one CA key with a key id in DG14, MSE:Set AT with DO'84' answered 6A80",
                "AndyQ/NFCPassportReader PR #128",
                requires="ca",
            ),
            QuirkProfile(
                _quirk(
                    "legacy-dh",
                    "ca-dh",
                    CardQuirks(),
                    chip_authentication=CaAlgorithm.DH_3DES_CBC_CBC,
                    chip_authentication_parameter_id=DomainParameterId.MODP_1024_160,
                ),
                "Chip Authentication on a 1024-bit DH group (MSE:Set KAT, 3DES)",
                "ICAO 9303-11 §6.2; Fethbita/eMRTD_face_access#3",
                requires="ca",
            ),
            QuirkProfile(
                _quirk("cnie", "aa-ecdsa-der", CardQuirks(aa_der_signature=True)),
                "ECDSA Active Authentication signature in DER (X9.62), not plain r||s",
                "gmrtd/gmrtd#187, PR #188",
                requires="aa",
            ),
            QuirkProfile(
                _quirk("passport-bac", "aa-not-supported", CardQuirks(aa_unsupported=True)),
                "DG15 present, INTERNAL AUTHENTICATE answered 6D00",
                "privacybydesign/irmamobile PR #672",
            ),
            QuirkProfile(
                _quirk(
                    "cnie",
                    "sod-mixed-digests",
                    CardQuirks(
                        sod_hash=HashAlgorithm.SHA1, sod_signature_hash=HashAlgorithm.SHA384
                    ),
                ),
                "EF.SOD hashes the data groups with SHA-1 and signs with SHA-384",
                "MatthiasValvekens/pyHanko#242; tananaev/passport-reader#51",
            ),
            QuirkProfile(
                _quirk("cnie", "ds-not-in-sod", CardQuirks(sod_without_certificate=True)),
                "EF.SOD does not carry the document signer certificate; a store has it",
                "ICAO 9303-10 §4.6.2.2; gmrtd/gmrtd#352, #440",
                needs_document_signer=True,
            ),
            QuirkProfile(
                _quirk(
                    "cnie",
                    "plain-errors",
                    CardQuirks(plain_errors=True, missing_data_groups=frozenset({13})),
                ),
                "answers a refusal inside secure messaging in plain (no MAC) and ends the "
                "session; EF.COM lists a DG13 the chip lacks",
                "AndyQ/NFCPassportReader#205; flipperdevices/flipperzero-firmware PR #1866",
                data_groups=(1, 2, 13, 14, 15),
            ),
            QuirkProfile(
                _quirk(
                    "cnie",
                    "aa-hash-not-announced",
                    CardQuirks(aa_without_info=True),
                    active_authentication_parameter_id=DomainParameterId.SECP384R1,
                ),
                "ECDSA Active Authentication key on P-384 signing with SHA-256; DG14 has no "
                "ActiveAuthenticationInfo to say which hash",
                "gmrtd/gmrtd PR #477 (Portuguese Cartão de Cidadão)",
                requires="aa",
            ),
        )
    }
)

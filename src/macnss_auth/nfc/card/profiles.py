"""The standard card profiles: what each kind of test card offers.

=============  =====  ==========================================  =======  ==================
profile        MRZ    access                                      AA       CA
=============  =====  ==========================================  =======  ==================
passport-bac   TD3    BAC (3DES)                                  RSA      ECDH, 3DES (KAT)
cnie           TD1    PACE ECDH-GM brainpoolP256r1 AES-128,       ECDSA    ECDH, AES-128
                      MRZ or CAN (5 tries for the CAN), ext. len
pace-im        TD1    PACE ECDH-IM brainpoolP256r1 AES-128        --       --
pace-cam       TD1    PACE ECDH-CAM brainpoolP256r1 AES-128       --       ECDH, AES-128
legacy-dh      TD3    BAC and PACE DH-GM 1024-bit MODP, 3DES      RSA      --
eid-pin        TD1    PACE ECDH-GM brainpoolP256r1 AES-128,       ECDSA    ECDH, AES-128
                      CAN, PIN (3 tries, suspended at 1) and PUK
=============  =====  ==========================================  =======  ==================

``cnie`` follows the shape of a modern national ID card such as the Moroccan
CNIE (TD1 MRZ, PACE with the CAN printed on the card, chip and active
authentication); ``eid-pin`` that of an eID card used with a PIN (BSI
TR-03110-2 §3.5: PIN with a retry counter of 3, suspended at 1, blocked at
0 and unblocked with the PUK). The data on test cards is invented.

:func:`profile` also knows the quirk profiles of
:mod:`macnss_auth.nfc.card.quirks` (standard profiles with a real-chip
behaviour switched on), so ``issue_card("wrong-le-6cxx", ...)`` works too.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import attrs

from macnss_auth.errors import ConfigurationError
from macnss_auth.nfc.card.model import AaKeyKind, CardProfile, DocumentKind, PasswordKind
from macnss_auth.nfc.chip_auth import CaAlgorithm
from macnss_auth.nfc.domain_params import DomainParameterId
from macnss_auth.nfc.securityinfos import PaceOid

__all__ = ["PROFILES", "profile"]

# Every PACE profile starts from this chip (brainpoolP256r1, AES-128, MRZ or
# CAN) and says only how it differs; the table keeps each difference visible.
_PACE_TD1 = CardProfile(
    name="pace",
    document=DocumentKind.TD1,
    bac=False,
    pace_protocol=PaceOid.ECDH_GM_AES_CBC_CMAC_128,
    pace_parameter_id=DomainParameterId.BRAINPOOLP256R1,
    pace_passwords=frozenset({PasswordKind.MRZ, PasswordKind.CAN}),
)
_ECDH_AES = CaAlgorithm.ECDH_AES_CBC_CMAC_128

PROFILES: Mapping[str, CardProfile] = MappingProxyType(
    {
        profile.name: profile
        for profile in (
            CardProfile(
                name="passport-bac",
                document=DocumentKind.TD3,
                bac=True,
                active_authentication=AaKeyKind.RSA,
                chip_authentication=CaAlgorithm.ECDH_3DES_CBC_CBC,
            ),
            attrs.evolve(
                _PACE_TD1,
                name="cnie",
                password_retries=5,
                active_authentication=AaKeyKind.ECDSA,
                chip_authentication=_ECDH_AES,
                extended_length=True,
            ),
            attrs.evolve(_PACE_TD1, name="pace-im", pace_protocol=PaceOid.ECDH_IM_AES_CBC_CMAC_128),
            attrs.evolve(
                _PACE_TD1,
                name="pace-cam",
                pace_protocol=PaceOid.ECDH_CAM_AES_CBC_CMAC_128,
                chip_authentication=_ECDH_AES,
            ),
            attrs.evolve(
                _PACE_TD1,
                name="legacy-dh",
                document=DocumentKind.TD3,
                bac=True,
                pace_protocol=PaceOid.DH_GM_3DES_CBC_CBC,
                pace_parameter_id=DomainParameterId.MODP_1024_160,
                active_authentication=AaKeyKind.RSA,
            ),
            attrs.evolve(
                _PACE_TD1,
                name="eid-pin",
                pace_passwords=frozenset({PasswordKind.CAN, PasswordKind.PIN, PasswordKind.PUK}),
                pin_retries=3,
                puk_uses=10,
                active_authentication=AaKeyKind.ECDSA,
                chip_authentication=_ECDH_AES,
                extended_length=True,
            ),
        )
    }
)


def profile(name: str) -> CardProfile:
    """The standard or quirk profile called ``name``.

    Raises:
        ConfigurationError: no such profile.
    """
    from macnss_auth.nfc.card.quirks import QUIRK_PROFILES  # noqa: PLC0415 (it imports us)

    if name in PROFILES:
        return PROFILES[name]
    if name in QUIRK_PROFILES:
        return QUIRK_PROFILES[name].profile
    known = ", ".join(sorted(PROFILES))
    raise ConfigurationError(
        f"unknown card profile {name!r} (known: {known}, and the quirk profiles "
        f"{', '.join(sorted(QUIRK_PROFILES))})"
    )

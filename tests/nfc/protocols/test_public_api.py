"""The names macnss_auth.nfc exports: changing them is a deliberate act."""

from __future__ import annotations

import macnss_auth.nfc


def test_public_names() -> None:
    assert sorted(macnss_auth.nfc.__all__) == sorted(
        [
            "CAN",
            "ActiveAuthResult",
            "ActiveAuthentication",
            "BacProtocol",
            "BacResult",
            "CaAlgorithm",
            "CaCommands",
            "CardSecureChannel",
            "ChipAuthResult",
            "ChipAuthentication",
            "CommandAPDU",
            "DhPublicKey",
            "Mrz",
            "MrzKey",
            "ResponseAPDU",
            "SecureChannel",
            "SessionKeys",
            "StatusWord",
            "Tlv",
            "Transport",
            "derive_bac_keys",
            "parse_mrz",
            "run",
        ]
    )
    for name in macnss_auth.nfc.__all__:
        assert getattr(macnss_auth.nfc, name) is not None

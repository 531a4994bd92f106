"""Limits that keep hostile input from costing unbounded work or desynchronizing a channel."""

from __future__ import annotations

import pytest

from macnss_auth import LocalProtocolError, UnsupportedAlgorithm
from macnss_auth.nfc.apdu import CommandAPDU
from macnss_auth.nfc.chip_auth import DhPublicKey
from macnss_auth.nfc.crypto import SymmetricCipher
from macnss_auth.nfc.sm import SecureChannel, SessionKeys


def test_a_command_too_long_to_protect_leaves_the_counter_alone() -> None:
    channel = SecureChannel(SessionKeys.derive(b"k" * 16, SymmetricCipher.AES), ssc=0)
    with pytest.raises(LocalProtocolError):
        channel.protect(CommandAPDU(0x00, 0xD6, 0, 0, data=b"a" * 65_500, extended=True))
    assert channel.ssc == bytes(16)
    channel.protect(CommandAPDU(0x00, 0xB0, 0, 0, ne=16))
    assert channel.ssc == (1).to_bytes(16, "big")


def test_a_huge_dh_modulus_from_dg14_is_refused_before_any_arithmetic() -> None:
    p = (1 << 8192) - 1
    with pytest.raises(UnsupportedAlgorithm):
        DhPublicKey(p=p, g=2, y=5)

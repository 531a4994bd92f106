"""Refusing a secret never repeats it: not in the message, the args, the repr or the cause.

Every parser that takes a secret from outside (OTP and one-time codes,
recovery codes, base32 TOTP seeds, PACE passwords, the MRZ key, audit and
chain keys) gets hostile text that contains a long marker; whatever it
raises (a :class:`MacnssAuthError`, as the other fuzz tests check) must not
carry the marker anywhere a log or an error page could print it.
``HYPOTHESIS_PROFILE=long`` (``make fuzz``) runs it with its budget.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from macnss_auth.audit import AuditPublicKey, AuditSigner, ChainKey
from macnss_auth.errors import MacnssAuthError
from macnss_auth.nfc.mrz import CAN, PIN, MrzKey
from macnss_auth.otp.codes import normalize_code
from macnss_auth.otp.enrollment import decode_base32_secret
from macnss_auth.otp.oob.codes import CodePolicy, normalize_oob_code
from macnss_auth.otp.recovery import normalize_recovery_code

PARSERS: dict[str, Callable[[str], object]] = {
    "otp code": normalize_code,
    "otp code of 6": lambda text: normalize_code(text, length=6),
    "one-time code": lambda text: normalize_oob_code(text, CodePolicy()),
    "recovery code": lambda text: normalize_recovery_code(text, length=12),
    "base32 seed": decode_base32_secret,
    "CAN": CAN,
    "PIN": PIN,
    "MRZ number": lambda text: MrzKey(text, "900101", "300101"),
    "MRZ birth": lambda text: MrzKey("L898902C3", text, "300101"),
    "chain key": ChainKey.from_hex,
    "audit signer PEM": lambda text: AuditSigner.from_pem(text.encode("utf-8", "replace")),
    "audit public PEM": lambda text: AuditPublicKey.from_pem(text.encode("utf-8", "replace")),
}


def _everything_printed(exc: BaseException) -> str:
    """What a log or a debug page could show of ``exc``: message, args, repr, traceback."""
    parts = [str(exc), repr(exc), *map(repr, exc.args)]
    parts += traceback.format_exception(exc)
    return "\n".join(parts)


@pytest.mark.slow
@given(
    parser=st.sampled_from(sorted(PARSERS)),
    before=st.text(max_size=10),
    marker=st.sampled_from(["7391", "739182", "7391826450", "K7P3QW9Z", "ZXCVBNMASDFGHJKL"]),
    after=st.text(max_size=10),
)
def test_a_refused_secret_is_never_repeated(
    parser: str, before: str, marker: str, after: str
) -> None:
    text = before + marker + after
    printed = ""
    try:
        PARSERS[parser](text)
    except MacnssAuthError as exc:
        printed = _everything_printed(exc)
    assert marker not in printed, parser


def test_a_wrong_pem_does_not_show_the_key_text() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nK7P3QW9ZSECRET\n-----END PRIVATE KEY-----\n"
    with pytest.raises(MacnssAuthError) as raised:
        AuditSigner.from_pem(pem.encode())
    assert "K7P3QW9ZSECRET" not in _everything_printed(raised.value)

"""The otp package after the split: old import paths still work, and the decision stays pure."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from macnss_auth.otp import matching

# What ``macnss_auth.otp.oob`` exported when it was one module (issue 17 split it).
OOB_NAMES = [
    "DIGITS",
    "GENERIC_FAILURE",
    "SAFE_ALPHANUMERIC",
    "BackgroundDispatcher",
    "CodeNotDelivered",
    "CodePolicy",
    "Dispatcher",
    "EmailCodeAuthenticator",
    "InlineDispatcher",
    "OutOfBandAuthenticator",
    "ResendPolicy",
    "SMSCodeAuthenticator",
    "generate_code",
    "normalize_oob_code",
]
# What ``macnss_auth.otp.hotp`` exported when it also held the shared bases.
HOTP_NAMES = [
    "DEFAULT_LOOK_AHEAD",
    "DEFAULT_RESYNC_WINDOW",
    "MAX_LOOK_AHEAD",
    "MAX_RESYNC_WINDOW",
    "REPLAY_LOOK_BEHIND",
    "BaseOtpAuthenticator",
    "CodeAuthenticatorBase",
    "HotpAuthenticator",
]


@pytest.mark.parametrize(
    ("module", "names"), [("macnss_auth.otp.oob", OOB_NAMES), ("macnss_auth.otp.hotp", HOTP_NAMES)]
)
def test_the_old_import_paths_keep_working(module: str, names: list[str]) -> None:
    imported = importlib.import_module(module)
    assert sorted(imported.__all__) == sorted(names)
    for name in names:
        assert getattr(imported, name) is not None, name


def test_the_bases_are_the_same_objects_wherever_they_are_imported_from() -> None:
    from macnss_auth.otp import code_flow, hotp, otp_flow, totp  # noqa: PLC0415

    assert hotp.CodeAuthenticatorBase is code_flow.CodeAuthenticatorBase
    assert hotp.BaseOtpAuthenticator is otp_flow.BaseOtpAuthenticator
    assert totp.time_step is matching.time_step


def test_the_match_functions_import_no_store_no_clock_no_audit() -> None:
    tree = ast.parse(Path(matching.__file__).read_text(encoding="utf-8"))
    imported = {
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    forbidden = ("macnss_auth.store", "macnss_auth.clock", "macnss_auth.audit", "time")
    assert [m for m in imported if m.startswith(forbidden)] == []

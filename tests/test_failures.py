"""Failure texts: one for every reason, kind of method and language, worded for the method."""

from __future__ import annotations

import pytest

from macnss_auth.errors import (
    AuthenticationFailed,
    LockedOut,
    MalformedInput,
    Reason,
    UnsupportedLanguage,
)
from macnss_auth.failures import MESSAGE_LANGUAGES, METHOD_KINDS, failure_text, method_kind

METHODS = [*METHOD_KINDS, "custom", None]


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_has_a_text_for_every_method_and_language(reason: Reason) -> None:
    for method in METHODS:
        texts = [
            failure_text(AuthenticationFailed(reason=reason, method=method), language=language)
            for language in MESSAGE_LANGUAGES
        ]
        assert len(set(texts)) == len(MESSAGE_LANGUAGES), (reason, method, texts)
        for text in texts:
            assert text.strip() == text
            assert text
            assert "{" not in text
            assert reason.value not in text  # sentences, not codes


def test_a_card_reading_is_never_called_a_code_and_a_code_is_never_a_card() -> None:
    for reason in Reason:
        card = failure_text(AuthenticationFailed(reason=reason, method="eid"), language="en")
        if reason not in (Reason.MALFORMED_CODE, Reason.DELIVERY_FAILED):
            assert "code" not in card.lower(), (reason, card)
        code = failure_text(AuthenticationFailed(reason=reason, method="sms"), language="en")
        if reason not in (Reason.DOCUMENT_NOT_GENUINE, Reason.DOCUMENT_MISMATCH):
            assert "card" not in code.lower(), (reason, code)


def test_the_wait_is_given_in_whole_minutes() -> None:
    locked = LockedOut(retry_after=601.0)
    assert failure_text(locked, language="en") == "Too many attempts. Try again in 11 min."
    assert "11" in failure_text(locked, language="fr")
    assert "1 min" in failure_text(LockedOut(retry_after=0.2), language="en")


def test_malformed_input_and_kinds() -> None:
    letters = MalformedInput("letters", field="code")
    assert failure_text(letters, language="en").startswith("A code has only digits")
    assert method_kind("eid") == "card"
    assert method_kind("webauthn") == "passkey"
    assert method_kind("smoke-signals") == "other"
    assert method_kind(None) == "other"
    with pytest.raises(UnsupportedLanguage):
        failure_text(letters, language="zgh")  # Tamazight: not yet shipped

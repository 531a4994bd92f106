"""A client's mistake named by the library is a 4xx problem with the library's reason."""

from __future__ import annotations

import pytest

from macnss_auth.errors import (
    ConfigurationError,
    MacnssAuthError,
    MalformedInput,
    MethodNotOffered,
    UnsupportedLanguage,
)
from macnss_auth.web.problems import problem_for


@pytest.mark.parametrize(
    ("error", "status", "reason"),
    [
        (MethodNotOffered("fido"), 404, "method_not_offered"),
        (UnsupportedLanguage("de", supported=("ar", "fr", "en")), 422, "unsupported_language"),
        (MalformedInput("letters", field="code"), 422, "malformed_code"),
        (MalformedInput("bad bundle", field="SOD"), 422, "malformed_response"),
    ],
)
def test_client_errors_are_4xx_with_their_reason(
    error: MacnssAuthError, status: int, reason: str
) -> None:
    assert not isinstance(error, ConfigurationError)
    body = problem_for(error)
    assert (body["status"], body["reason"]) == (status, reason)
    assert "fido" not in str(body)  # the input is never echoed

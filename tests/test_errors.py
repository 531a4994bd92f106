from __future__ import annotations

import inspect
import pickle

import pytest

import macnss_auth
from macnss_auth import errors


def all_error_classes() -> list[type[BaseException]]:
    return [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__ == errors.__name__
    ]


@pytest.mark.parametrize("cls", all_error_classes(), ids=lambda c: c.__name__)
def test_every_error_descends_from_the_root(cls: type[BaseException]) -> None:
    assert issubclass(cls, errors.MacnssAuthError)
    assert cls.__name__ in macnss_auth.__all__


def test_authentication_failures_carry_data_on_attributes() -> None:
    exc = errors.LockedOut(retry_after=12.5, remaining_attempts=0)
    assert exc.reason is errors.Reason.LOCKED_OUT
    assert exc.retry_after == 12.5
    assert exc.remaining_attempts == 0
    assert isinstance(exc, errors.VerificationThrottled)
    assert str(exc) == "locked_out"


def test_reasons_are_stable_strings() -> None:
    assert errors.Reason("replayed") is errors.Reason.REPLAYED
    assert errors.TokenReplayed().reason.value == "replayed"
    assert len({r.value for r in errors.Reason}) == len(errors.Reason)


def test_access_denied_keeps_the_status_word() -> None:
    exc = errors.AccessDenied(status_word=0x63C2, remaining_attempts=2)
    assert exc.status_word == 0x63C2
    assert exc.remaining_attempts == 2


def test_malformed_input_is_a_value_error_with_a_field() -> None:
    exc = errors.MalformedInput("bad", field="DG1")
    assert isinstance(exc, ValueError)
    assert exc.field == "DG1"


_DEFAULT_REASONS = {
    "MalformedInput": "malformed_response",
    "MethodNotOffered": "method_not_offered",
    "UnsupportedLanguage": "unsupported_language",
    "AuthenticationFailed": "invalid_code",
    "InvalidCode": "invalid_code",
    "TokenReplayed": "replayed",
    "VerificationThrottled": "throttled",
    "LockedOut": "locked_out",
    "RateLimited": "rate_limited",
    "NotEnrolled": "not_enrolled",
    "ChallengeNotFound": "challenge_not_found",
    "ChallengeExpired": "challenge_expired",
    "ChallengeUsed": "challenge_used",
    "AccessDenied": "access_denied",
    "PasswordSuspended": "access_denied",
    "PasswordBlocked": "access_denied",
    "DocumentNotGenuine": "document_not_genuine",
}


@pytest.mark.parametrize("name", sorted(_DEFAULT_REASONS))
def test_each_error_kind_keeps_its_default_reason(name: str) -> None:
    # The class keyword (``class InvalidCode(AuthenticationFailed, reason=...)``) sets
    # the same class attribute the classes used to assign one by one.
    cls = getattr(errors, name)
    assert cls.default_reason.value == _DEFAULT_REASONS[name]
    if issubclass(cls, errors.AuthenticationFailed):
        assert cls().reason.value == _DEFAULT_REASONS[name]


def test_every_error_with_a_default_reason_is_listed() -> None:
    with_reason = {c.__name__ for c in all_error_classes() if hasattr(c, "default_reason")}
    assert with_reason == set(_DEFAULT_REASONS)


@pytest.mark.parametrize(
    "cls", [errors.StoreError, errors.SecretKeyError, errors.SchemaVersionError]
)
def test_store_errors_say_whether_to_retry_also_across_processes(
    cls: type[errors.StoreError],
) -> None:
    assert cls("down").retryable is False  # unless the store knows better
    exc = cls("connection lost", retryable=True)
    again = pickle.loads(pickle.dumps(exc))  # noqa: S301 (our own pickle)
    assert type(again) is cls
    assert (str(again), again.retryable) == ("connection lost", True)

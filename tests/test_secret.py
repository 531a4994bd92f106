from __future__ import annotations

import logging
import pickle

import pytest

from macnss_auth import ConfigurationError, Secret


def test_repr_str_and_format_are_redacted() -> None:
    secret = Secret(b"hunter2")
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", f"{secret:>20}"):
        assert "hunter2" not in text
        assert "redacted" in text


def test_reveal_is_explicit() -> None:
    assert Secret(b"\x00\x01").reveal() == b"\x00\x01"
    assert Secret.from_text("سر").reveal() == "سر".encode()


def test_equality_and_no_hash() -> None:
    assert Secret(b"a") == Secret(b"a")
    assert Secret(b"a") != Secret(b"b")
    assert Secret(b"a") != b"a"
    with pytest.raises(TypeError):
        hash(Secret(b"a"))


def test_refuses_text_and_pickling() -> None:
    with pytest.raises(TypeError):
        Secret("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pickle.dumps(Secret(b"a"))


def test_never_reaches_logs(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("macnss_auth.test")
    with caplog.at_level(logging.DEBUG, logger="macnss_auth.test"):
        logger.debug("value %s %r", Secret(b"topsecret"), Secret(b"topsecret"))
    assert "topsecret" not in caplog.text


def _secret_holders() -> list[object]:
    from macnss_auth.nfc.mrz import CAN, PIN, PUK, MrzKey  # noqa: PLC0415 (one test's needs)

    return [
        Secret(b"246810"),
        CAN("246810"),
        PIN("246810"),
        PUK("24681012"),
        MrzKey("L898902C3", "740812", "120415"),
    ]


@pytest.mark.parametrize("value", _secret_holders(), ids=lambda v: type(v).__name__)
def test_every_secret_holder_is_redacted_and_unhashable(value: object) -> None:
    # One Redacted base gives all of them the same face: type name and <redacted>.
    shown = f"{type(value).__name__}(<redacted>)"
    assert repr(value) == str(value) == f"{value}" == f"{value!s:>5}" == shown
    assert "246810" not in f"{value!r}{value}"
    assert "L898902C3" not in repr(value)
    with pytest.raises(TypeError, match=f"^{type(value).__name__} is unhashable$"):
        hash(value)
    assert value == value  # noqa: PLR0124 (equality is defined, constant-time)


def test_text_that_cannot_be_encoded_is_a_configuration_error_without_the_text() -> None:
    with pytest.raises(ConfigurationError) as info:
        Secret.from_text("hunter2\ud800")
    # Nothing of the text travels with the error, chained exceptions included.
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    assert "hunter2" not in repr(info.value.args)

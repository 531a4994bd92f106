from __future__ import annotations

import logging
import pickle

import pytest

from macnss_auth import Secret


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

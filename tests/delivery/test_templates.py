"""Message templates (ar/fr/en), bidi isolation, and SMS length awareness."""

from __future__ import annotations

import io
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from macnss_auth.delivery import (
    CapturingChannel,
    ChannelKind,
    ConsoleChannel,
    FileChannel,
    OutboundMessage,
    SmsEncoding,
    failure_message,
    find_code,
    render_code_message,
    sms_length,
)
from macnss_auth.delivery.segments import GSM7_BASIC, GSM7_EXTENSION, encode_segments
from macnss_auth.delivery.templates import LRI, PDI
from macnss_auth.errors import ConfigurationError, DeliveryError


@pytest.mark.parametrize("language", ["en", "fr"])
def test_latin_sms_fit_one_gsm7_segment(language: str) -> None:
    message = render_code_message(
        ChannelKind.SMS, code="012345", lifetime=300, service="CNSS", language=language
    )
    length = sms_length(message.text)
    assert length.encoding is SmsEncoding.GSM7
    assert length.segments == 1
    assert find_code(message.text) == "012345"
    assert "5 min" in message.text


def test_arabic_sms_isolates_the_code_and_fits_two_segments() -> None:
    message = render_code_message(
        ChannelKind.SMS, code="012345", lifetime=300, service="CNSS", language="ar"
    )
    assert f"{LRI}012345{PDI}" in message.text
    length = sms_length(message.text)
    assert length.encoding is SmsEncoding.UCS2
    assert length.segments <= 2
    # The text is right-to-left: its first strong character is Arabic.
    first_strong = next(
        c
        for c in message.text.replace(f"{LRI}012345{PDI}", "")
        if unicodedata.bidirectional(c) in ("L", "R", "AL")
    )
    assert unicodedata.bidirectional(first_strong) == "AL"
    # Every isolate is closed.
    assert message.text.count(PDI) == message.text.count(LRI) + message.text.count("\u2068")


@pytest.mark.parametrize("language", ["ar", "fr", "en"])
@pytest.mark.parametrize("minutes", [1, 2, 5, 10])
def test_every_message_has_code_lifetime_service_and_warning(language: str, minutes: int) -> None:
    for kind in ChannelKind:
        message = render_code_message(
            kind, code="987654", lifetime=minutes * 60, service="CNSS", language=language
        )
        assert find_code(message.text) == "987654"
        assert "CNSS" in message.text
        warning = {"en": "share", "fr": "jamais", "ar": "تشارك"}[language]
        assert warning in message.text
        if minutes > 2 or language != "ar":
            assert str(minutes) in message.text
        if kind is ChannelKind.EMAIL:
            assert "CNSS" in message.subject


def test_webotp_origin_line() -> None:
    message = render_code_message(
        ChannelKind.SMS, code="123456", lifetime=300, service="CNSS", origin="cnss.example"
    )
    assert message.text.endswith("\n\n@cnss.example #123456")


def test_unknown_language_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        render_code_message(ChannelKind.SMS, code="1", lifetime=60, service="x", language="de")
    with pytest.raises(ConfigurationError):
        failure_message("de")


def test_failure_messages_exist_in_three_languages() -> None:
    assert len({failure_message(lang) for lang in ("ar", "fr", "en")}) == 3


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", SmsEncoding.GSM7, 0, 1),
        ("a" * 160, SmsEncoding.GSM7, 160, 1),
        ("a" * 161, SmsEncoding.GSM7, 161, 2),
        ("a" * 306, SmsEncoding.GSM7, 306, 2),
        ("a" * 307, SmsEncoding.GSM7, 307, 3),
        ("€" * 80, SmsEncoding.GSM7, 160, 1),
        ("€" * 81, SmsEncoding.GSM7, 162, 2),
        ("ç", SmsEncoding.UCS2, 1, 1),
        ("ب" * 70, SmsEncoding.UCS2, 70, 1),
        ("ب" * 71, SmsEncoding.UCS2, 71, 2),
        ("ب" * 134, SmsEncoding.UCS2, 134, 2),
        ("ب" * 135, SmsEncoding.UCS2, 135, 3),
        ("😀" * 35, SmsEncoding.UCS2, 70, 1),
    ],
)
def test_segment_counts(text: str, encoding: SmsEncoding, units: int, segments: int) -> None:
    length = sms_length(text)
    assert (length.encoding, length.units, length.segments) == (encoding, units, segments)


@given(st.text(alphabet=st.sampled_from(GSM7_BASIC.replace("\x1b", "") + "".join(GSM7_EXTENSION))))
def test_gsm7_split_never_breaks_an_escape(text: str) -> None:
    encoding, parts = encode_segments(text)
    assert encoding is SmsEncoding.GSM7
    for part in parts:
        assert not part.endswith(b"\x1b")
        assert len(part) <= (160 if len(parts) == 1 else 153)


@given(st.text(max_size=400))
def test_ucs2_split_keeps_text_and_limits(text: str) -> None:
    encoding, parts = encode_segments(text)
    if encoding is SmsEncoding.UCS2:
        assert b"".join(parts).decode("utf-16-be") == text
        assert all(len(p) // 2 <= (70 if len(parts) == 1 else 67) for p in parts)
        for part in parts:
            part.decode("utf-16-be")  # no half surrogate pair at a boundary
    assert sms_length(text).segments == len(parts)


def _message(kind: ChannelKind = ChannelKind.SMS) -> OutboundMessage:
    return OutboundMessage(
        kind=kind, to="+212612345678", text="123456 is your code", hint="+212 6•• ••• •78"
    )


def test_console_channel_prints_masked_destination_and_text() -> None:
    stream = io.StringIO()
    receipt = ConsoleChannel(ChannelKind.SMS, stream=stream).send(_message())
    out = stream.getvalue()
    assert "+212 6•• ••• •78" in out
    assert "+212612345678" not in out
    assert "123456 is your code" in out
    assert "gsm7" in out
    assert receipt.segments == 1


def test_file_channel_appends(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "outbox.txt"  # type: ignore[operator]
    channel = FileChannel(ChannelKind.EMAIL, path=path)
    channel.send(_message(ChannelKind.EMAIL))
    channel.send(_message(ChannelKind.EMAIL))
    assert path.read_text(encoding="utf-8").count("123456 is your code") == 2


def test_message_repr_hides_code_and_number() -> None:
    text = repr(_message())
    assert "123456" not in text
    assert "612345678" not in text


def test_capturing_channel_scripted_failures() -> None:
    channel = CapturingChannel(ChannelKind.SMS)
    channel.fail_with([DeliveryError("down", retryable=True)])
    with pytest.raises(DeliveryError):
        channel.send(_message())
    channel.send(_message())
    assert channel.attempts == 2
    assert channel.last_code() == "123456"
    with pytest.raises(LookupError):
        channel.last(to="+33600000000")


@pytest.mark.parametrize(
    ("language", "one", "five"),
    [
        ("en", "expires in 1 minute and", "expires in 5 minutes and"),
        ("fr", "expire dans 1 minute et", "expire dans 5 minutes et"),
        ("ar", "بعد دقيقة واحدة", "دقائق"),
    ],
)
def test_the_email_duration_uses_the_plural_forms(language: str, one: str, five: str) -> None:
    def body(seconds: int) -> str:
        return render_code_message(
            ChannelKind.EMAIL, code="123456", lifetime=seconds, service="CNSS", language=language
        ).text

    assert one in body(60)
    assert five in body(300)

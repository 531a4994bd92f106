"""The message codec: round trips, and nothing but typed failures for any input."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from macnss_auth.nfc.phone import (
    PHONE_MESSAGES,
    SERVER_MESSAGES,
    Commands,
    ErrorMessage,
    Hello,
    PhoneFailure,
    PhoneLimits,
    PhoneMode,
    PhoneSessionFailed,
    Responses,
    ResultMessage,
    Resume,
    Step,
    Upload,
    Welcome,
    decode_message,
    encode_message,
)

SAMPLES = [
    Hello("abc", PhoneMode.RELAY, extended_length=True, password={"can": "123456"}),
    Upload({"SOD": b"\x77\x01\x00", "DG1": b"\x61\x00"}, b"\x01" * 64, "0.4.0.127.0.7.2.2.4.2.2"),
    Responses(3, (b"\x90\x00", b"\x01\x02\x90\x00")),
    Resume("s1", bytes(16)),
]
REPLIES = [
    Welcome("s1", bytes(16), bytes(8), PhoneMode.SPLIT, 120, {"max_steps": 8}),
    Commands(1, (Step(b"\x00\xa4\x00\x0c", wrap=True), Step(b"\x0c\xb0")), reestablish=False),
    ResultMessage(authenticated=True, assurance="high", proof="x", assertion="a.b.c"),
    ErrorMessage(PhoneFailure.TIMEOUT, "late"),
]


def test_round_trips() -> None:
    for message in SAMPLES:
        assert decode_message(encode_message(message)) == message
    for message in REPLIES:
        assert decode_message(encode_message(message), accept=SERVER_MESSAGES) == message


def test_bytes_are_unpadded_base64url() -> None:
    text = encode_message(Responses(1, (b"\xfb\xff\x90\x00",)))
    assert json.loads(text)["responses"] == ["-_-QAA"]


def test_secrets_stay_out_of_reprs() -> None:
    assert "123456" not in repr(SAMPLES[0])
    assert repr(bytes(16)) not in repr(SAMPLES[3])
    assert "a.b.c" not in repr(REPLIES[2])


def accepted_or_typed(raw: str | bytes) -> None:
    """Decoding gives a message or a PhoneSessionFailed with a reason; nothing else escapes."""
    failure: PhoneFailure | None = None
    try:
        decode_message(raw, limits=PhoneLimits())
    except PhoneSessionFailed as exc:
        failure = exc.failure
    assert failure is None or isinstance(failure, PhoneFailure)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)


@settings(max_examples=300)
@given(
    kind=st.sampled_from(sorted(PHONE_MESSAGES)),
    body=st.dictionaries(
        st.sampled_from(
            ["challenge", "mode", "files", "batch", "responses", "session", "token", "reason",
             "password", "extended_length", "aa_signature", "pace_protocol", "x"]
        ),
        JSON,
    ),
)  # fmt: skip
def test_any_json_body_is_accepted_or_a_typed_failure(kind: str, body: dict[str, object]) -> None:
    raw = json.dumps({"v": 1, "type": kind, **body})
    accepted_or_typed(raw)


@settings(max_examples=300)
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_any_text_is_accepted_or_a_typed_failure(raw: str | bytes) -> None:
    accepted_or_typed(raw)

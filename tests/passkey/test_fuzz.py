"""Whatever a client sends, a passkey verifier answers with one of the library's own errors."""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

import cbor2
from hypothesis import assume, given
from hypothesis import strategies as st

from macnss_auth.authenticator import AssuranceLevel
from macnss_auth.errors import AuthenticationFailed, MacnssAuthError, MalformedInput, Reason
from macnss_auth.passkey import Requirement
from macnss_auth.passkey._wire import AuthenticatorData, parse_assertion, parse_attestation
from tests.passkey.helpers import make_setup

SUBJECT = "citizen-0004"
SETUP = make_setup()
PHONE = SETUP.device()
SETUP.register(SUBJECT, PHONE)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@given(json_values)
def test_any_json_is_parsed_or_malformed(value: Any) -> None:
    for parse in (parse_assertion, parse_attestation):
        with contextlib.suppress(MalformedInput):
            parse(json.dumps(value))


@given(st.binary(max_size=300))
def test_any_authenticator_data_is_parsed_or_malformed(raw: bytes) -> None:
    try:
        data = AuthenticatorData.parse(raw)
    except MalformedInput:
        return
    assert data.raw == raw


@given(st.binary(max_size=200))
def test_any_attestation_object_bytes(raw: bytes) -> None:
    response = {
        "id": "AAAA",
        "rawId": "AAAA",
        "type": "public-key",
        "response": {"clientDataJSON": b64(b"{}"), "attestationObject": b64(raw)},
    }
    with contextlib.suppress(MalformedInput):
        parse_attestation(response)


@given(
    st.sampled_from(["clientDataJSON", "authenticatorData", "signature", "userHandle"]),
    st.binary(max_size=120),
)
def test_any_field_of_a_real_assertion(field: str, raw: bytes) -> None:
    # An empty user handle means "none given", which a named login does not need.
    assume(field != "userHandle" or raw)
    challenge = SETUP.passkeys.begin(SUBJECT)
    response = PHONE.get(challenge.data["options"])
    response["response"][field] = b64(raw)
    try:
        SETUP.passkeys.verify(challenge, response)
    except MacnssAuthError:
        pass
    else:
        raise AssertionError("a mangled assertion was accepted")


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=4))
def test_any_cbor_statement(statement: dict[str, Any]) -> None:
    challenge = SETUP.passkeys.begin_registration("fuzz")
    response = SETUP.device().create(challenge.data["options"])
    raw = base64.urlsafe_b64decode(response["response"]["attestationObject"] + "==")
    decoded = cbor2.loads(raw)
    decoded["fmt"] = "packed"
    decoded["attStmt"] = statement
    response["response"]["attestationObject"] = b64(cbor2.dumps(decoded))
    try:
        SETUP.passkeys.finish_registration(challenge, response)
    except MacnssAuthError:
        pass
    else:
        raise AssertionError("a packed attestation without a valid statement was accepted")


@given(
    st.sampled_from(["required", "preferred"]),
    st.booleans(),  # BE at registration
    st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),  # UP, UV, BE, BS
)
def test_every_flag_combination_gets_the_specified_answer(
    requirement: Requirement, registered_be: bool, flags: tuple[bool, bool, bool, bool]
) -> None:
    up, uv, be, bs = flags
    setup = make_setup(user_verification=requirement)
    device = setup.device(backup_eligible=registered_be)
    setup.register(SUBJECT, device)
    challenge = setup.passkeys.begin(SUBJECT)
    response = device.get(challenge.data["options"], up=up, uv=uv, be=be, bs=bs)
    if not up:
        expected: Reason | AssuranceLevel = Reason.USER_NOT_PRESENT
    elif requirement == "required" and not uv:
        expected = Reason.USER_NOT_VERIFIED
    elif (bs and not be) or be != registered_be:
        expected = Reason.BACKUP_STATE_INVALID
    else:
        expected = AssuranceLevel.SUBSTANTIAL if uv else AssuranceLevel.LOW
    try:
        outcome: Reason | AssuranceLevel = setup.passkeys.verify(challenge, response).assurance
    except AuthenticationFailed as exc:
        outcome = exc.reason
    assert outcome == expected

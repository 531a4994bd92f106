"""Structure-aware fuzzing of passkey ceremonies: real responses, hostile edits, typed errors.

:mod:`tests.passkey.test_fuzz` feeds random bytes and JSON, which the first
length or type check mostly stops. Here each example starts from a real
response of the virtual authenticator and edits one layer of it: the
COSE key inside the attested credential data (key types, curves,
algorithms, coordinates of every length, huge integers, nesting), the
authenticator data's bytes (flag bits, counters, credential id lengths
that lie, extensions, cuts), the clientDataJSON members (hostile values,
deep nesting), the attestation statement, or the assertion's signature.
Registration and login must then succeed or raise a
:class:`MacnssAuthError`; an edited assertion must never log anyone in.
``HYPOTHESIS_PROFILE=long`` (``make fuzz``) runs them with its budget.
"""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

import cbor2
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from macnss_auth.errors import MacnssAuthError, MalformedInput
from macnss_auth.passkey._wire import b64url
from macnss_auth.passkey.virtual import VirtualAuthenticator
from macnss_auth.throttle import ThrottlePolicy
from tests.passkey.helpers import make_setup

# Failures must not lock the fuzzed subject out: every example should reach the parsers
# (each assertion example ends with a real login, which clears the count).
SETUP = make_setup(
    throttle_policy=ThrottlePolicy(free_failures=99, lockout_after=100),
    max_credentials=100,
)
SUBJECT = "citizen-fuzz"
PHONE = SETUP.device()
SETUP.register(SUBJECT, PHONE)
_SUBJECTS = itertools.count()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# Hostile leaves: CBOR and JSON scalars no honest authenticator or browser sends.
_HUGE = st.integers(64, 5000).map(lambda bits: 2**bits)  # built: hypothesis's repr of it fails
_LEAVES = (
    st.integers(-(2**70), 2**70)
    | _HUGE
    | st.binary(max_size=80)
    | st.sampled_from([b"", b"\x00" * 32, b"\xff" * 32, b"\x04" + b"\x01" * 64, b"\x00" * 4096])
    | st.text(max_size=10)
    | st.sampled_from([None, True, False, 1.5, float("nan"), float("inf")])
)
_CBOR = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.integers(-5, 5) | st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


def _deep(depth: int) -> object:
    value: object = 0
    for _ in range(depth):
        value = [value]
    return value


@st.composite
def _cose(draw: st.DrawFn, real: dict[int, Any]) -> dict[Any, Any]:
    """The real COSE_Key with entries changed, dropped or added (RFC 9052 §7, RFC 9053 §7)."""
    key: dict[Any, Any] = dict(real)
    for _ in range(draw(st.integers(1, 4))):
        label = draw(st.sampled_from([1, 3, -1, -2, -3, -4, 2, 4]) | st.integers(-10, 10))
        how = draw(st.sampled_from(["value", "drop", "typed"]))
        if how == "drop":
            key.pop(label, None)
        elif how == "typed":
            # Plausible values of each label: known kty (OKP 1, EC2 2, RSA 3, Symmetric 4),
            # algorithms (ES256 -7, EdDSA -8, RS256 -257, PS256 -37, ES384 -35...), curves.
            key[label] = draw(
                st.sampled_from([1, 2, 3, 4, 0, -7, -8, -35, -36, -37, -257, -65535, 6, 7, 99])
            )
        else:
            key[label] = draw(_CBOR)
    return key


def _split_auth_data(auth_data: bytes) -> tuple[bytes, bytes, dict[int, Any]]:
    """(everything before the COSE key, the credential id, the COSE key) of attested data."""
    length = int.from_bytes(auth_data[53:55], "big")
    head = auth_data[: 55 + length]
    return head, auth_data[55 : 55 + length], cbor2.loads(auth_data[55 + length :])


@st.composite
def _byte_edits(draw: st.DrawFn, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["flip", "cut", "flags", "count", "length", "tail"]))
        where = draw(st.integers(0, max(len(out) - 1, 0)))
        if how == "flip" and out:
            out[where] ^= 1 << draw(st.integers(0, 7))
        elif how == "cut":
            del out[where:]
        elif how == "flags" and len(out) > 32:
            out[32] = draw(st.integers(0, 255))
        elif how == "count" and len(out) >= 37:
            out[33:37] = draw(st.binary(min_size=4, max_size=4))
        elif how == "length" and len(out) >= 55:
            # The attested credential id length (WebAuthn §6.5.2) lies.
            out[53:55] = draw(st.integers(0, 0xFFFF)).to_bytes(2, "big")
        else:
            # Trailing CBOR, as extensions (ED flag) would carry: maybe hostile, maybe cut.
            tail = cbor2.dumps(draw(_CBOR))
            out += tail[: draw(st.integers(0, len(tail)))]
    return bytes(out)


_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=20)
    | st.sampled_from(["webauthn.get", "webauthn.create", "http://localhost:8443", "\ud800", ""])
)
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)


@st.composite
def _client_data(draw: st.DrawFn, raw: bytes) -> bytes:
    how = draw(st.sampled_from(["member", "drop", "bytes", "deep"]))
    if how == "bytes":
        return draw(_byte_edits(raw))
    if how == "deep":
        return b'{"type":' + b"[" * draw(st.sampled_from([100, 100_000])) + b"}"
    value = json.loads(raw)
    member = draw(st.sampled_from([*value, "tokenBinding", "topOrigin"]))
    if how == "drop":
        value.pop(member, None)
    else:
        value[member] = draw(_JSON)
    return json.dumps(value).encode()


@st.composite
def _statement(draw: st.DrawFn) -> tuple[str, dict[Any, Any]]:
    fmt = draw(
        st.sampled_from(
            ["none", "packed", "fido-u2f", "tpm", "android-key", "android-safetynet", "apple"]
        )
        | st.text(max_size=8)
    )
    if draw(st.booleans()):
        statement = draw(st.dictionaries(st.sampled_from(["alg", "sig", "x5c", "ver", "response",
                                                           "certInfo", "pubArea"]),
                                         _CBOR | st.lists(st.binary(max_size=300), max_size=2),
                                         max_size=4))  # fmt: skip
        return fmt, statement
    # Every member of its WebAuthn §8 type, so the format's own verifier gets to parse them:
    # DER that is not a certificate, a JWS that is not one, TPM structures cut short.
    typed = {
        "alg": st.sampled_from([-7, -8, -257, -37, -65535, 0]),
        "sig": st.binary(max_size=100),
        "x5c": st.lists(st.binary(max_size=200) | st.just(b"\x30\x82\xff\xff"), max_size=2),
        "ver": st.sampled_from(["2.0", "1", "", "\u00e9"]),
        "response": st.sampled_from([b"a.b.c", b"", b"\xff", b"e30.e30.AAAA"]) | st.binary(),
        "certInfo": st.binary(max_size=120),
        "pubArea": st.binary(max_size=120),
    }
    names = draw(st.sets(st.sampled_from(sorted(typed)), max_size=5))
    return fmt, {name: draw(typed[name]) for name in sorted(names)}


@pytest.mark.parametrize(
    "key", [b"@", b"\x80", b"\x01", b"\xc1\xa0"], ids=["bytes", "array", "int", "tag"]
)
def test_a_credential_key_that_is_not_a_cose_map_is_malformed(key: bytes) -> None:
    challenge, response, _, _ = _register_response()
    part = response["response"]
    decoded = cbor2.loads(_unb64(part["attestationObject"]))
    head, _, _ = _split_auth_data(decoded["authData"])
    decoded["authData"] = head + key
    part["attestationObject"] = b64url(cbor2.dumps(decoded))
    with pytest.raises(MalformedInput) as caught:
        SETUP.passkeys.finish_registration(challenge, response)
    assert caught.value.field == "credentialPublicKey"


def _register_response() -> tuple[Any, dict[str, Any], str, VirtualAuthenticator]:
    subject = f"fuzz-{next(_SUBJECTS)}"
    device = SETUP.device()
    challenge = SETUP.passkeys.begin_registration(subject)
    response = device.create(challenge.data["options"])
    return challenge, response, subject, device


def _finish_and_login(
    challenge: Any, response: dict[str, Any], subject: str, device: VirtualAuthenticator
) -> None:
    try:
        SETUP.passkeys.finish_registration(challenge, response)
    except MacnssAuthError:
        return
    # Accepted (an edit the checks let through, such as an unknown COSE label): the stored
    # key must still only ever give typed answers when someone logs in with it.
    login = SETUP.passkeys.begin(subject)
    try:
        SETUP.passkeys.verify(login, device.get(login.data["options"]))
    except MacnssAuthError:
        return


@st.composite
def _registration_edit(draw: st.DrawFn) -> tuple[str, Any]:
    layer = draw(st.sampled_from(["cose", "auth_data", "client_data", "statement", "cose_bytes"]))
    if layer == "statement":
        return layer, draw(_statement())
    if layer == "cose":
        real = {1: 2, 3: -7, -1: 1, -2: b"\x01" * 32, -3: b"\x02" * 32}
        return layer, draw(_cose(real))
    if layer == "cose_bytes":
        return layer, draw(st.binary(max_size=80) | st.sampled_from(
            [b"\xa5" + b"\x81" * 500, b"\xbb" + b"\x7f" * 8, b"\x5b" + b"\x7f" * 8]))  # fmt: skip
    return layer, None  # client data and authenticator data edits are drawn from the real ones


def _apply_registration_edit(
    response: dict[str, Any], layer: str, edit: Any, data: st.DataObject
) -> None:
    part = response["response"]
    decoded = cbor2.loads(_unb64(part["attestationObject"]))
    head, _, cose = _split_auth_data(decoded["authData"])
    if layer == "client_data":
        part["clientDataJSON"] = b64url(data.draw(_client_data(_unb64(part["clientDataJSON"]))))
        return
    if layer == "client_data_bytes":
        part["clientDataJSON"] = b64url(edit)
        return
    if layer == "statement":
        decoded["fmt"], decoded["attStmt"] = edit
    elif layer == "cose":
        real = dict(cose)
        for label in (-2, -3):
            if edit.get(label) in (b"\x01" * 32, b"\x02" * 32):
                edit[label] = real[label]
        decoded["authData"] = head + cbor2.dumps(edit)
    elif layer == "cose_bytes":
        decoded["authData"] = head + edit
    else:
        decoded["authData"] = data.draw(_byte_edits(decoded["authData"]))
    part["attestationObject"] = b64url(cbor2.dumps(decoded))


@pytest.mark.slow
@settings(deadline=None)
@given(edit=_registration_edit(), data=st.data())
@example(edit=("client_data_bytes", b'{"type":' + b"[" * 100_000 + b"}"), data=None)
# A COSE key that is an empty CBOR byte string: py_webauthn raised IndexError.
@example(edit=("cose_bytes", b"@"), data=None)
# A SafetyNet response that is a list, not bytes: py_webauthn raised AttributeError.
@example(edit=("statement", ("android-safetynet", {"ver": "1", "response": [b""]})), data=None)
def test_edited_registrations_get_typed_answers(
    edit: tuple[str, Any], data: st.DataObject | None
) -> None:
    challenge, response, subject, device = _register_response()
    layer, value = edit
    _apply_registration_edit(response, layer, value, data)  # type: ignore[arg-type]
    _finish_and_login(challenge, response, subject, device)


@st.composite
def _assertion_edit(draw: st.DrawFn) -> tuple[str, Any]:
    layer = draw(st.sampled_from(["auth_data", "client_data", "signature", "user_handle"]))
    if layer == "signature":
        # ECDSA-Sig-Value DER (RFC 3279 §2.2.3) with lying lengths, or just bytes.
        return layer, draw(
            st.binary(max_size=80)
            | st.sampled_from([b"\x30\x84\x7f\xff\xff\xff", b"\x30\x06\x02\x01\x00\x02\x01\x00",
                               b"\x30\x08\x02\x82\xff\xff\x01\x02\x01\x01", b"\x30" * 200])
        )  # fmt: skip
    if layer == "user_handle":
        return layer, draw(st.binary(min_size=1, max_size=100))
    return layer, None


@pytest.mark.slow
@settings(deadline=None)
@given(edit=_assertion_edit(), data=st.data())
def test_edited_assertions_never_log_in(edit: tuple[str, Any], data: st.DataObject) -> None:
    challenge = SETUP.passkeys.begin(SUBJECT)
    response = PHONE.get(challenge.data["options"])
    part = response["response"]
    original = json.dumps(response, sort_keys=True)
    layer, value = edit
    if layer == "auth_data":
        edited = data.draw(_byte_edits(_unb64(part["authenticatorData"])))
        part["authenticatorData"] = b64url(edited)
    elif layer == "client_data":
        part["clientDataJSON"] = b64url(data.draw(_client_data(_unb64(part["clientDataJSON"]))))
    elif layer == "signature":
        part["signature"] = b64url(value)
    else:
        part["userHandle"] = b64url(value)
    if json.dumps(response, sort_keys=True) == original:
        return
    try:
        result = SETUP.passkeys.verify(challenge, response)
    except MacnssAuthError:
        SETUP.login(SUBJECT, PHONE)
        return
    # Only a client data edit that keeps every checked member (an unknown extra member, or
    # a reordering) could still verify; the signature covers its bytes, so none does.
    raise AssertionError(f"an edited assertion logged in: {layer}, {result}")

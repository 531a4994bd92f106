"""Fuzzing whole phone sessions: a real phone, a real card, and one hostile edit on the way.

:mod:`tests.nfc.phone.test_messages` fuzzes message decoding and
:mod:`tests.nfc.phone.test_attacks` replays chosen attacks. Here the
reference phone reads the virtual card (split mode, or relay mode where the
server is the terminal and every card answer comes back in a ``responses``
message) and hypothesis edits what it sends: a file of the upload (bit
flips, cuts, DER length fields that lie, up to a claimed 2**31 bytes,
another file's content, a file dropped or added), the Active
Authentication signature, or a response APDU (of the Chip Authentication
batch; in relay mode, of any step). The session must end in a result or a
:class:`MacnssAuthError` (never another exception), and an edited DG1 or
SOD must never authenticate anyone. ``HYPOTHESIS_PROFILE=long``
(``make fuzz``) runs it with its budget.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from macnss_auth.errors import MacnssAuthError
from macnss_auth.nfc.phone import PhoneMessage, PhoneMode, Responses, Upload
from macnss_auth.testing import FixedClock

from .conftest import NOW, SUBJECT, drive, issued, make_eid, phone_for

_FILE_NAMES = ["COM", "SOD", "CardAccess", *(f"DG{n}" for n in range(1, 17))]


@st.composite
def _edited_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["flip", "cut", "insert", "length", "huge"]))
        where = draw(st.integers(0, len(out) - 1)) if out else 0
        if how == "flip" and out:
            out[where] ^= 1 << draw(st.integers(0, 7))
        elif how == "cut":
            del out[max(where, 1) :]
        elif how == "insert":
            out[where:where] = draw(st.binary(min_size=1, max_size=8))
        elif how == "length" and out:
            out[where] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0x81, 0x82, 0x84, 0xFF]))
        else:
            out[where:where] = b"\x84\x7f\xff\xff\xff"  # a length of about 2**31
    return bytes(out) or b"\x00"


class _Tamper:
    """Edits the phone's messages as hypothesis decides; remembers what it edited."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data
        self.core_edited = False  # DG1 or SOD changed: nobody may be authenticated

    def __call__(self, message: PhoneMessage) -> PhoneMessage:
        draw = self.data.draw
        if isinstance(message, Upload) and draw(st.booleans(), label="edit upload"):
            files = dict(message.files)
            signature = message.aa_signature
            how = draw(st.sampled_from(["bytes", "swap", "drop", "add", "signature"]))
            name = draw(st.sampled_from(sorted(files)), label="file")
            if how == "bytes":
                files[name] = draw(_edited_bytes(files[name]))
            elif how == "swap":
                files[name] = files[draw(st.sampled_from(sorted(files)), label="other")]
            elif how == "drop":
                del files[name]
            elif how == "add":
                files[draw(st.sampled_from(_FILE_NAMES))] = draw(st.binary(min_size=1, max_size=64))
            else:
                signature = draw(st.none() | st.binary(min_size=1, max_size=300))
            self.core_edited |= any(
                files.get(core) != message.files.get(core) for core in ("DG1", "SOD")
            )
            return Upload(files, signature, message.pace_protocol)
        # One batch in eight: relay mode sends dozens, and later steps should be reached too.
        edit = isinstance(message, Responses) and draw(st.integers(0, 7), label="edit?") == 0
        if isinstance(message, Responses) and edit:
            answers = list(message.responses)
            index = draw(st.integers(0, len(answers) - 1))
            edited = draw(_edited_bytes(answers[index]))
            answers[index] = edited if len(edited) >= 2 else b"\x90\x00"
            return Responses(message.batch, tuple(answers))
        return message


@pytest.mark.slow
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    profile=st.sampled_from(["cnie", "legacy-dh", "passport-bac", "pace-cam"]),
    mode=st.sampled_from([PhoneMode.SPLIT, PhoneMode.RELAY]),
    data=st.data(),
)
def test_edited_sessions_end_in_a_result_or_a_typed_error(
    profile: str, mode: PhoneMode, data: st.DataObject
) -> None:
    card = issued(profile)
    eid = make_eid(FixedClock.at(NOW), card)
    challenge = eid.begin(SUBJECT)
    session = eid.phone_session(challenge)
    phone, _ = phone_for(card, profile, challenge, mode)
    tamper = _Tamper(data)
    result: Any = None
    try:
        drive(session, phone, tamper=tamper)
        result = eid.verify(challenge.id, session)
    except MacnssAuthError:
        return
    assert not tamper.core_edited, f"an edited DG1 or SOD authenticated: {result}"

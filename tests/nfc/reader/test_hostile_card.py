"""A hostile or broken card can make the reader fail, but only with the library's errors."""

from __future__ import annotations

import contextlib
import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from macnss_auth import MacnssAuthError
from macnss_auth.nfc.card.chip import VirtualCard
from macnss_auth.nfc.reader import DocumentReader
from macnss_auth.nfc.serve import MemoryTransport
from macnss_auth.testing import FixedRandom

from .conftest import issued, password_for


@functools.cache
def clean_files(profile: str) -> dict[str, bytes]:
    transport = MemoryTransport(VirtualCard(issued(profile).data, random=FixedRandom(5)))
    return dict(DocumentReader(transport, random=FixedRandom(6)).read(password_for(profile)).files)


class Hostile:
    """The real card for the first ``honest`` exchanges, then the attacker's bytes."""

    def __init__(self, profile: str, honest: int, answers: list[bytes]) -> None:
        self.inner = MemoryTransport(VirtualCard(issued(profile).data, random=FixedRandom(5)))
        self.honest = honest
        self.answers = answers
        self.count = 0

    def transceive(self, command: bytes) -> bytes:
        self.count += 1
        if self.count <= self.honest:
            return self.inner.transceive(command)
        if self.answers:
            return self.answers.pop(0)
        return b"\x6f\x00"


@pytest.mark.parametrize("profile", ["cnie", "passport-bac"])
@settings(max_examples=150, deadline=None)
@given(
    honest=st.integers(min_value=0, max_value=40),
    answers=st.lists(st.binary(max_size=300), min_size=1, max_size=4),
)
def test_arbitrary_answers_raise_only_library_errors(
    profile: str, honest: int, answers: list[bytes]
) -> None:
    reader = DocumentReader(Hostile(profile, honest, answers), random=FixedRandom(6))
    with contextlib.suppress(MacnssAuthError):
        reader.read(password_for(profile), active_auth_challenge=bytes(8))


@pytest.mark.parametrize("profile", ["cnie", "passport-bac"])
@settings(max_examples=100, deadline=None)
@given(honest=st.integers(min_value=1, max_value=40), flip=st.integers(min_value=0, max_value=2047))
def test_a_flipped_bit_never_yields_a_document(profile: str, honest: int, flip: int) -> None:
    """One bit flipped in any protected answer: the read fails, never returns altered data."""
    inner = MemoryTransport(VirtualCard(issued(profile).data, random=FixedRandom(5)))
    state = {"n": 0}

    class Flipper:
        def transceive(self, command: bytes) -> bytes:
            state["n"] += 1
            answer = inner.transceive(command)
            if state["n"] == honest and len(answer) > 2:
                position = flip % ((len(answer) - 2) * 8)
                changed = bytearray(answer)
                changed[position // 8] ^= 1 << (position % 8)
                return bytes(changed)
            return answer

    try:
        result = DocumentReader(Flipper(), random=FixedRandom(6)).read(password_for(profile))
    except MacnssAuthError:
        return
    # Only a flip in an unprotected, unauthenticated answer that changed nothing may pass.
    assert dict(result.files) == clean_files(profile)

from __future__ import annotations

import datetime as dt

import pytest

from macnss_auth import SystemClock, SystemRandom
from macnss_auth.testing import FixedClock, FixedRandom, ScriptedRandom


def test_system_sources() -> None:
    assert SystemClock().now().tzinfo is dt.timezone.utc
    assert len(SystemRandom().token_bytes(32)) == 32
    assert SystemRandom().token_bytes(0) == b""


def test_fixed_clock_moves_only_when_told() -> None:
    clock = FixedClock.at(59)
    assert clock.now().timestamp() == 59
    assert clock.advance(1).timestamp() == 60
    with pytest.raises(ValueError, match="aware"):
        FixedClock(dt.datetime(2026, 1, 1))  # noqa: DTZ001 (testing the refusal of naive times)


def test_fixed_random_is_reproducible_and_seed_dependent() -> None:
    assert FixedRandom(7).token_bytes(40) == FixedRandom(7).token_bytes(40)
    assert FixedRandom(7).token_bytes(40) != FixedRandom(8).token_bytes(40)
    stream = FixedRandom(7)
    assert stream.token_bytes(10) + stream.token_bytes(30) == FixedRandom(7).token_bytes(40)


def test_scripted_random_returns_the_script_and_refuses_mismatches() -> None:
    random = ScriptedRandom(b"\x01" * 8, b"\x02" * 16)
    assert random.token_bytes(8) == b"\x01" * 8
    with pytest.raises(LookupError):
        random.token_bytes(8)
    with pytest.raises(LookupError):
        random.token_bytes(8)

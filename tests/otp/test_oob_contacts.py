"""Phone and e-mail validation, normalization and masking; destination records."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from macnss_auth.delivery import ChannelKind
from macnss_auth.errors import MalformedInput
from macnss_auth.otp.contacts import (
    confirmed_destination,
    mask_email,
    mask_phone,
    parse_email,
    parse_phone,
    promote_pending,
    put_destination,
    put_pending,
    remove_destination,
)
from macnss_auth.store import Keyring, MemoryStore
from macnss_auth.testing import FixedClock


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("06 12 34 56 78", "+212612345678"),
        ("0612345678", "+212612345678"),
        ("+212 612-345678", "+212612345678"),
        ("00212612345678", "+212612345678"),
        ("07 00 12 34 56", "+212700123456"),
        ("+33 6 12 34 56 78", "+33612345678"),
    ],
)
def test_phone_numbers_become_e164(typed: str, e164: str) -> None:
    destination = parse_phone(typed)
    assert destination.address == e164
    assert destination.kind is ChannelKind.SMS


@pytest.mark.parametrize(
    "typed",
    ["", "hello", "06 12", "+212 5 22 12 34 56", "0800 000 000", "+999 123", "1" * 70],
)
def test_bad_or_non_mobile_numbers_are_refused(typed: str) -> None:
    with pytest.raises(MalformedInput) as info:
        parse_phone(typed)
    assert info.value.field == "phone"
    if typed:
        assert typed not in str(info.value)


def test_region_can_be_changed() -> None:
    assert parse_phone("06 12 34 56 78", region="FR").address == "+33612345678"


@given(st.text(max_size=80))
def test_phone_parser_only_raises_malformed_input(text: str) -> None:
    try:
        destination = parse_phone(text)
    except MalformedInput:
        return
    assert destination.address.startswith("+")


def test_masks() -> None:
    assert mask_phone("+212612345678") == "+212 6•• ••• •78"
    assert mask_phone("+33612345678") == "+33 6•• ••• •78"
    assert mask_email("alice@example.org") == "a•••@example.org"
    assert parse_phone("0612345678").hint == "+212 6•• ••• •78"
    with pytest.raises(MalformedInput):
        mask_phone("not a number")


@pytest.mark.parametrize(
    ("typed", "normalized"),
    [
        ("alice@example.org", "alice@example.org"),
        ("  Alice@Example.ORG ", "Alice@example.org"),
        ("fatima.zahra+cnss@sub.example.ma", "fatima.zahra+cnss@sub.example.ma"),
    ],
)
def test_email_addresses_are_normalized(typed: str, normalized: str) -> None:
    assert parse_email(typed).address == normalized


@pytest.mark.parametrize("typed", ["", "alice", "alice@", "@example.org", "a@b@c", "a@localhost"])
def test_bad_email_addresses_are_refused(typed: str) -> None:
    with pytest.raises(MalformedInput) as info:
        parse_email(typed)
    assert info.value.field == "email"


@given(st.text(max_size=400))
def test_email_parser_only_raises_malformed_input(text: str) -> None:
    try:
        destination = parse_email(text)
    except MalformedInput:
        return
    assert "@" in destination.address


def test_repr_hides_the_address() -> None:
    assert "612345678" not in repr(parse_phone("0612345678"))


def test_pending_destination_is_not_used_until_promoted() -> None:
    clock = FixedClock.at(1_800_000_000)
    store = MemoryStore(keyring=Keyring.generate())
    old = parse_phone("0611111111")
    new = parse_phone("0622222222")
    put_destination(store, "alice", old, now=clock.now())
    put_pending(
        store,
        "alice",
        new,
        now=clock.now(),
        challenge_id="c1",
        expires_at=clock.now() + dt.timedelta(minutes=5),
    )
    assert confirmed_destination(store, "alice", ChannelKind.SMS) == old
    assert (
        promote_pending(store, "alice", ChannelKind.SMS, challenge_id="c2", now=clock.now()) is None
    )
    promoted = promote_pending(store, "alice", ChannelKind.SMS, challenge_id="c1", now=clock.now())
    assert promoted == new
    assert confirmed_destination(store, "alice", ChannelKind.SMS) == new
    assert remove_destination(store, "alice", ChannelKind.SMS)
    assert confirmed_destination(store, "alice", ChannelKind.SMS) is None

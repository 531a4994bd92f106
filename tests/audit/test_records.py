"""Events become records without secrets; records are canonical; subjects pseudonymous."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from macnss_auth.audit import (
    AuditEventRejected,
    AuditFormatError,
    AuditKeyError,
    AuditKeys,
    AuditLog,
    ChainedAuditLog,
    ChainHead,
    ChainKey,
    JsonLinesAuditLog,
    MemoryAuditLog,
    SecretScreen,
    SQLiteAuditLog,
    pseudonymize,
    verify_records,
)
from macnss_auth.audit.record import canonical_json, decode_record
from macnss_auth.errors import ConfigurationError, MalformedInput
from macnss_auth.secret import Secret
from tests.audit.helpers import CHAIN_KEY, PSEUDONYM_KEY, T0, event, make_log, typical_events

# What the person typed, the phone number, the MRZ and the keys of the scenario:
# none of them may end up in a record.
CODE = "492039"
PHONE = "+212612345678"
MRZ = "I<MARBK123456<7<<<<<<<<<<<<<<<"


def test_memory_log_keeps_its_simple_interface() -> None:
    log = MemoryAuditLog()
    assert isinstance(log, AuditLog)
    assert [log.record(event(n)) for n in range(3)] == ["1", "2", "3"]
    assert [e.details["n"] for e in log.events] == ["0", "1", "2"]
    assert log.events[0].subject == "CNIE-BK123456"
    assert log.verify().count == 3


def test_every_sink_is_an_audit_log(tmp_path: Path) -> None:
    assert isinstance(SQLiteAuditLog(f"{tmp_path}/a.sqlite3"), AuditLog)
    assert isinstance(JsonLinesAuditLog(f"{tmp_path}/a.jsonl"), AuditLog)


def test_typical_events_serialize_without_secrets() -> None:
    log = MemoryAuditLog(chain_key=CHAIN_KEY, pseudonym_key=PSEUDONYM_KEY)
    for item in typical_events():
        log.record(item)
    text = b"\n".join(canonical_json(r) for r in log.records()).decode()
    for secret in (CODE, PHONE, PHONE[1:], MRZ, "BK123456", CHAIN_KEY.hex(), PSEUDONYM_KEY.hex()):
        assert secret not in text
    assert log.verify().count == len(typical_events())
    first = log.records()[0]
    assert first["subject"] == pseudonymize("CNIE-BK123456", PSEUDONYM_KEY)
    assert first["client"] == {
        "client_id": "kiosk-casa-07",
        "ip": "10.20.30.40",
        "user_agent": "kiosk/2.1",
    }
    assert first["at"] == "2026-11-28T09:30:00.000000+00:00"


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({"code": "abc"}, "details.code"),
        ({"otp_value": "x"}, "details.otp_value"),
        ({"secret": "x"}, "details.secret"),
        ({"card-pin": "x"}, "details.card-pin"),
        ({"MRZ": "x"}, "details.MRZ"),
        ({"phone": "masked"}, "details.phone"),
        ({"submitted": CODE}, "details.submitted"),
        ({"destination": PHONE}, "details.destination"),
        ({"destination": "06 12 34 56 78"}, "details.destination"),
        ({"destination": "06.12.34.56.78"}, "details.destination"),
        ({"destination": "+212 (6) 12-34-56-78"}, "details.destination"),
        ({"line2": MRZ}, "details.line2"),
        ({"note": "user typed 12345678 twice"}, "details.note"),
        ({"counter_guess": "1234567"}, "details.counter_guess"),
    ],
)
def test_secret_looking_details_are_refused(details: dict[str, str], field: str) -> None:
    log = MemoryAuditLog()
    with pytest.raises(AuditEventRejected) as caught:
        log.record(event(details=details))
    assert caught.value.field == field
    assert isinstance(caught.value, ConfigurationError)
    for value in details.values():
        if len(value) > 3:
            assert value not in str(caught.value)
    assert log.events == ()
    assert log.head() == ChainHead(0, "0" * 64)


def test_reason_and_channel_are_screened() -> None:
    with pytest.raises(AuditEventRejected, match="reason"):
        MemoryAuditLog().record(event(reason=f"wrong code {CODE}"))
    with pytest.raises(AuditEventRejected, match="channel"):
        MemoryAuditLog().record(event(channel=PHONE))


@pytest.mark.parametrize(
    "value",
    [
        "2001:db8::1",
        "192.168.100.200",
        "2026-11-28T09:30:00+00:00",
        "2026-11-28",
        "0.123456",
        "kiosk 12",
        "+212 6** *** *78",
        "ACR122U 00 00",
        "-1",
    ],
)
def test_facts_that_are_not_secrets_pass(value: str) -> None:
    SecretScreen().check_details({"fact": value})


def test_numeric_keys_allow_long_integers_only() -> None:
    screen = SecretScreen()
    screen.check_details({"step": "59335260", "counter": "4294967296"})
    with pytest.raises(AuditEventRejected):
        screen.check_details({"step": "tel 0612345678"})


def test_screen_can_be_disabled() -> None:
    log = MemoryAuditLog(screen=None)
    log.record(event(details={"code": CODE}))
    assert log.records()[0]["details"] == {"code": CODE}


def test_ill_formed_events_are_refused() -> None:
    with pytest.raises(AuditEventRejected, match="at"):
        MemoryAuditLog().record(event(at=dt.datetime(2026, 1, 1)))  # noqa: DTZ001 (naive on purpose)
    with pytest.raises(AuditEventRejected, match="details"):
        MemoryAuditLog(screen=None).record(event(details={"x": "\ud800"}))
    with pytest.raises(AuditEventRejected, match="method"):
        MemoryAuditLog().record(event(method=42))


def test_times_are_stored_in_utc() -> None:
    casablanca = dt.timezone(dt.timedelta(hours=1))
    log = MemoryAuditLog()
    log.record(event(at=dt.datetime(2026, 11, 28, 10, 30, tzinfo=casablanca)))
    assert log.records()[0]["at"] == "2026-11-28T09:30:00.000000+00:00"


def test_pseudonyms_group_by_person_and_depend_on_the_key() -> None:
    one = MemoryAuditLog(pseudonym_key=PSEUDONYM_KEY)
    other = MemoryAuditLog(pseudonym_key=b"another key of thirty-two bytes!")
    for log in (one, other):
        log.record(event(0, subject="alice"))
        log.record(event(1, subject="bob"))
        log.record(event(2, subject="alice"))
    a1, b1, a2 = (r["subject"] for r in one.records())
    assert a1 == a2 != b1
    assert a1.startswith("ps:")
    assert len(a1) == 35
    assert "alice" not in json.dumps(one.records())
    assert other.records()[0]["subject"] != a1
    # The key holder can find someone's records; nobody else can.
    assert pseudonymize("alice", PSEUDONYM_KEY) == a1


def test_keys_never_show() -> None:
    key = ChainKey(CHAIN_KEY)
    assert CHAIN_KEY.hex() not in repr(key)
    assert len(key.kid) == 16
    with pytest.raises(AuditKeyError):
        ChainKey(b"short")
    with pytest.raises(AuditKeyError):
        ChainKey.from_hex("zz")
    assert ChainKey.from_hex(CHAIN_KEY.hex()).kid == key.kid


def test_chain_head_text_form() -> None:
    head = ChainHead(12, "ab" * 32)
    assert ChainHead.parse(str(head)) == head
    assert ChainHead.parse(f"12:{'AB' * 32}") == head
    for bad in ("12", "x:" + "ab" * 32, "12:" + "ab" * 31, "12:" + "zz" * 32, "-1:" + "ab" * 32):
        with pytest.raises(MalformedInput):
            ChainHead.parse(bad)


def test_decode_refuses_non_canonical_and_duplicate_keys() -> None:
    log = MemoryAuditLog()
    log.record(event())
    raw = canonical_json(log.records()[0])
    assert decode_record(raw)["seq"] == 1
    with pytest.raises(AuditFormatError, match="canonical"):
        decode_record(json.dumps(json.loads(raw), indent=1).encode())
    with pytest.raises(AuditFormatError):
        decode_record(raw[:-1] + b',"seq":2}')
    with pytest.raises(AuditFormatError):
        decode_record(raw.replace(b'"v":1', b'"v":2'))
    with pytest.raises(AuditFormatError):
        decode_record(raw[:-1] + b',"extra":null}')


@pytest.mark.parametrize("kind", ["memory", "sqlite", "jsonl"])
def test_threads_share_one_log(kind: str, tmp_path: Path) -> None:
    log: ChainedAuditLog = MemoryAuditLog() if kind == "memory" else make_log(kind, tmp_path)
    ids: list[str] = []

    def work(worker: int) -> None:
        ids.extend(log.record(event(n, details={"w": str(worker)})) for n in range(50))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(map(int, ids)) == list(range(1, 301))
    assert log.verify().count == 300


_TEXT = st.text(max_size=20)


@given(
    subject=st.none() | _TEXT,
    method=_TEXT,
    details=st.dictionaries(_TEXT, _TEXT, max_size=4),
    keyed=st.booleans(),
)
def test_anything_recordable_reads_back_and_verifies(
    subject: str | None, method: str, details: dict[str, str], keyed: bool
) -> None:
    log = MemoryAuditLog(screen=None, chain_key=CHAIN_KEY if keyed else None)
    try:
        log.record(event(subject=subject, method=method, details=details))
    except AuditEventRejected:
        return  # lone surrogates cannot be stored as UTF-8
    record = log.records()[0]
    assert decode_record(canonical_json(record)) == record
    assert record["details"] == details
    assert verify_records(log.records(), key=CHAIN_KEY if keyed else None).count == 1


def test_t0_is_aware() -> None:
    assert T0.tzinfo is not None


def test_audit_keys_derive_two_independent_keys() -> None:
    keys = AuditKeys.derive(b"application key of 32 bytes!!!!!")
    assert keys.chain != keys.pseudonym
    assert keys == AuditKeys.derive(Secret(b"application key of 32 bytes!!!!!"))
    assert "application" not in repr(keys)
    assert keys.chain.reveal().hex() not in repr(keys)
    log = MemoryAuditLog(chain_key=keys.chain, pseudonym_key=keys.pseudonym)
    log.record(event())
    assert log.records()[0]["subject"] == pseudonymize("CNIE-BK123456", keys.pseudonym)
    assert verify_records(log.records(), key=keys.chain).keyed
    with pytest.raises(AuditKeyError):
        AuditKeys.derive(b"short")

"""The stored format is stable: logs written today must verify with tomorrow's code.

The expected bytes below are written out by hand from docs/audit.md and the
chain module's docstring (sorted keys, no whitespace, the label
``macnss-auth/audit/chain/v1\\x00`` before the canonical JSON), and hashed
here with hashlib/hmac directly, not with the library's own functions.
"""

from __future__ import annotations

import hashlib
import hmac

from macnss_auth.audit import ChainKey, MemoryAuditLog, pseudonymize
from macnss_auth.audit.record import canonical_json
from tests.audit.helpers import CHAIN_KEY, PSEUDONYM_KEY, event

LABEL = b"macnss-auth/audit/chain/v1\x00"
BODY = (
    '{"action":"verify","at":"2026-11-28T09:30:00.000000+00:00","channel":null,'
    '"client":{"client_id":"kiosk-casa-07","ip":"10.20.30.40","user_agent":"kiosk/2.1"},'
    '"details":{"drift":"-1"},"kid":%s,"method":"totp","outcome":"failure",'
    '"prev":"0000000000000000000000000000000000000000000000000000000000000000",'
    '"reason":"invalid_code","seq":1,"subject":"%s","v":1}'
)


def test_unkeyed_record_bytes_and_hash() -> None:
    log = MemoryAuditLog()
    log.record(event(0, details={"drift": "-1"}))
    record = log.records()[0]
    body = (BODY % ("null", "CNIE-BK123456")).encode()
    expected = hashlib.sha256(LABEL + body).hexdigest()
    assert record["hash"] == expected
    stored = canonical_json(record).decode()
    assert stored == (body.decode().replace('"kid":null', f'"hash":"{expected}","kid":null'))


def test_keyed_record_hash_kid_and_pseudonym() -> None:
    log = MemoryAuditLog(chain_key=CHAIN_KEY, pseudonym_key=PSEUDONYM_KEY)
    log.record(event(0, details={"drift": "-1"}))
    record = log.records()[0]
    kid = hmac.new(CHAIN_KEY, b"macnss-auth/audit/key-id/v1", hashlib.sha256).hexdigest()[:16]
    pseudonym = (
        "ps:"
        + (
            hmac.new(
                PSEUDONYM_KEY, b"macnss-auth/audit/subject/v1\x00CNIE-BK123456", hashlib.sha256
            ).hexdigest()[:32]
        )
    )
    assert ChainKey(CHAIN_KEY).kid == kid
    assert pseudonymize("CNIE-BK123456", PSEUDONYM_KEY) == pseudonym
    body = (BODY % (f'"{kid}"', pseudonym)).encode()
    assert record["hash"] == hmac.new(CHAIN_KEY, LABEL + body, hashlib.sha256).hexdigest()

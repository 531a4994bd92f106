"""A service instance that verifies TOTP codes in a loop until it is killed.

``python -m tests.otp._audit_crash_worker STATE AUDIT``: the subject ``alice``
must be enrolled in STATE already. Round ``i`` verifies the code of time step
``FIRST_STEP + i`` and prints ``i`` once ``verify_code`` returned (store commit
and audit append both done).
"""

from __future__ import annotations

import base64
import sys

import pyotp

from macnss_auth.audit import SQLiteAuditLog
from macnss_auth.otp.totp import TotpAuthenticator
from macnss_auth.store import Keyring, SQLiteStore
from macnss_auth.testing import FixedClock

KEY = bytes(range(32))
SEED = b"12345678901234567890"
FIRST_STEP = 56_666_700


def main(state: str, audit_path: str) -> None:
    oracle = pyotp.TOTP(base64.b32encode(SEED).decode())
    clock = FixedClock.at(FIRST_STEP * 30)
    store = SQLiteStore(state, keyring=Keyring({"k": KEY}, primary="k"))
    totp = TotpAuthenticator(store=store, audit=SQLiteAuditLog(audit_path), clock=clock)
    for i in range(10**6):
        at = (FIRST_STEP + i) * 30
        clock.set(FixedClock.at(at).now())
        totp.verify_code("alice", oracle.at(at))
        print(i, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

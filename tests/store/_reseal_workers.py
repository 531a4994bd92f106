"""A re-seal and a stream of logins in separate processes (importable by spawned children)."""

from __future__ import annotations

from collections.abc import Callable

from macnss_auth.store import Keyring, SQLiteStore
from macnss_auth.testing.store_contract import KEY1, KEY2, enrollment

__all__ = ["ROTATED", "race_worker"]

ROTATED = Keyring({"k1": KEY1, "k2": KEY2}, primary="k2")


def race_worker(
    role: str, path: str, count: int, start: Callable[[], None]
) -> int:  # pragma: no cover (runs in a child process)
    """``"reseal"``: re-seal one record per batch; ``"logins"``: log in, re-enroll and delete.

    One record per batch makes as many short write transactions as the login
    worker makes, so the two processes take turns at the file lock.

    The login worker, for subject ``s<n>``: advances ``hotp:s<n>`` to ``n + 1``,
    then re-enrolls every third subject (``n % 3 == 1``) and deletes every
    third (``n % 3 == 2``). Returns what the re-seal moved, or the logins made.
    """
    with SQLiteStore(path, keyring=ROTATED) as store:
        start()
        if role == "reseal":
            return store.reseal(batch_size=1)
        for n in range(count):
            if not store.advance(f"hotp:s{n}", n + 1):
                raise AssertionError(f"hotp:s{n} did not advance")
            if n % 3 == 1:
                store.put_enrollment(enrollment(subject=f"s{n}", secret=b"new %d" % n))
            elif n % 3 == 2 and not store.delete_enrollment(f"s{n}", "totp"):
                raise AssertionError(f"s{n} was not there to delete")
        return count

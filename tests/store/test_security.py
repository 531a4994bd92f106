"""Secrets at rest in SQLiteStore: never in the file, bound to their record, keyed by id."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from macnss_auth.errors import SecretKeyError
from macnss_auth.store import Keyring, SQLiteStore
from macnss_auth.testing.store_contract import KEY1, KEY2, enrollment
from tests.store._leaks import secret_forms

SECRET = b"\x8f\x11TOTP-seed-that-must-never-hit-disk\x02\xfe"


def _files(path: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
        if p.exists()
    }


def test_secret_never_reaches_the_file_or_its_log(tmp_path: Path, keyring: Keyring) -> None:
    path = tmp_path / "s.sqlite3"
    store = SQLiteStore(path, keyring=keyring)
    store.put_enrollment(enrollment(secret=SECRET))
    store.put_enrollment(enrollment(method="hotp", secret=SECRET))
    # While open, the new pages live in the -wal file; after close, in the main file.
    while_open = _files(path)
    assert any(name.endswith("-wal") and data for name, data in while_open.items())
    store.close()
    after_close = _files(path)
    for snapshot in (while_open, after_close):
        for name, data in snapshot.items():
            for form in secret_forms(SECRET):
                assert form not in data, f"secret found in {name}"
    # The record is really there and opens.
    with SQLiteStore(path, keyring=keyring) as again:
        got = again.get_enrollment("alice", "hotp")
        assert got is not None
        assert got.secret.reveal() == SECRET
        assert SECRET.hex() not in repr(got)


def test_wrong_key_raises_secret_key_error(tmp_path: Path, keyring: Keyring) -> None:
    path = tmp_path / "s.sqlite3"
    with SQLiteStore(path, keyring=keyring) as store:
        store.put_enrollment(enrollment(secret=SECRET))
    with SQLiteStore(path, keyring=Keyring({"k1": KEY2}, primary="k1")) as wrong:
        with pytest.raises(SecretKeyError) as info:
            wrong.get_enrollment("alice", "totp")
        assert SECRET.hex() not in str(info.value)
    missing = Keyring({"other": KEY1}, primary="other")
    with SQLiteStore(path, keyring=missing) as store, pytest.raises(SecretKeyError, match="k1"):
        store.get_enrollment("alice", "totp")


def test_rotation_seals_new_secrets_under_the_new_primary(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    k1 = Keyring({"k1": KEY1}, primary="k1")
    with SQLiteStore(path, keyring=k1) as store:
        store.put_enrollment(enrollment(subject="old", secret=b"old secret"))
    k1k2 = Keyring({"k1": KEY1, "k2": KEY2}, primary="k2")
    with SQLiteStore(path, keyring=k1k2) as store:
        old = store.get_enrollment("old", "totp")
        assert old is not None
        assert old.secret.reveal() == b"old secret"
        store.put_enrollment(enrollment(subject="new", secret=b"new secret"))
    raw = sqlite3.connect(path)
    try:
        sealed = dict(raw.execute("SELECT subject, sealed FROM enrollments").fetchall())
    finally:
        raw.close()
    assert k1k2.key_id_of(sealed["old"]) == "k1"
    assert k1k2.key_id_of(sealed["new"]) == "k2"
    only_k1 = Keyring({"k1": KEY1}, primary="k1")
    with SQLiteStore(path, keyring=only_k1) as store, pytest.raises(SecretKeyError):
        store.get_enrollment("new", "totp")


@pytest.mark.parametrize(
    ("source", "target"),
    [(("alice", "totp"), ("bob", "totp")), (("alice", "totp"), ("alice", "hotp"))],
)
def test_a_secret_moved_to_another_record_does_not_open(
    tmp_path: Path, keyring: Keyring, source: tuple[str, str], target: tuple[str, str]
) -> None:
    path = tmp_path / "s.sqlite3"
    with SQLiteStore(path, keyring=keyring) as store:
        store.put_enrollment(enrollment(*source, secret=b"alice's seed"))
        store.put_enrollment(enrollment(*target, secret=b"target's seed"))
    # An attacker with write access to the file copies alice's sealed secret
    # onto the target's record, hoping to authenticate as the target with it.
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute(
            "UPDATE enrollments SET sealed = (SELECT sealed FROM enrollments"
            " WHERE subject = ? AND method = ?) WHERE subject = ? AND method = ?",
            (*source, *target),
        )
    finally:
        raw.close()
    with SQLiteStore(path, keyring=keyring) as store:
        with pytest.raises(SecretKeyError):
            store.get_enrollment(*target)
        good = store.get_enrollment(*source)
        assert good is not None
        assert good.secret.reveal() == b"alice's seed"


def test_a_tampered_secret_does_not_open(tmp_path: Path, keyring: Keyring) -> None:
    path = tmp_path / "s.sqlite3"
    with SQLiteStore(path, keyring=keyring) as store:
        store.put_enrollment(enrollment(secret=SECRET))
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        (sealed,) = raw.execute("SELECT sealed FROM enrollments").fetchone()
        flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
        raw.execute("UPDATE enrollments SET sealed = ?", (flipped,))
    finally:
        raw.close()
    with SQLiteStore(path, keyring=keyring) as store, pytest.raises(SecretKeyError):
        store.get_enrollment("alice", "totp")

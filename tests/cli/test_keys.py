"""``macnss-auth keys``: rotate the home's key, re-seal its secrets, retire the old key."""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import pyotp
import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from macnss_auth.audit import load_events
from macnss_auth.cli import main
from macnss_auth.cli.home import HOME_ENV, KEY_ENV, load_keyring, read_keyring_file
from macnss_auth.errors import ConfigurationError
from macnss_auth.secret import Secret
from macnss_auth.store import Enrollment, Keyring, SQLiteStore
from macnss_auth.testing.store_contract import T0


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HOME_ENV, raising=False)
    monkeypatch.delenv(KEY_ENV, raising=False)


def run(home: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--home", str(home)])


def _enrolled(home: Path) -> str:
    """A confirmed TOTP enrollment of alice in ``home``; its base32 secret."""
    enrolled = run(home, "totp", "enroll", "alice", "--no-qr")
    assert enrolled.exit_code == 0, enrolled.output
    match = re.search(r"^Secret: ([A-Z2-7 ]+)$", enrolled.output, re.MULTILINE)
    assert match is not None, enrolled.output
    secret = match.group(1).replace(" ", "")
    code = pyotp.TOTP(secret).at(int(time.time()) - 30)
    assert run(home, "totp", "confirm", "alice", code).exit_code == 0
    return secret


def first_key(home: Path) -> None:
    """The home's first key, k1, made as the first command that seals a secret makes it."""
    home.mkdir(parents=True, exist_ok=True)
    load_keyring(home)


def _key_ids_in_the_file(home: Path) -> set[str]:
    with sqlite3.connect(home / "state.sqlite3") as db:
        rows = db.execute("SELECT key_id, sealed FROM enrollments").fetchall()
    for key_id, sealed in rows:
        assert bytes(sealed)[2 : 2 + len(key_id)] == key_id.encode()  # the blob says it too
    return {key_id for key_id, _ in rows}


def test_rotate_reseals_under_a_new_key_and_retire_drops_the_old_one(tmp_path: Path) -> None:
    home = tmp_path / "home"
    secret = _enrolled(home)
    first_key = (home / "keyring.key").read_text().strip()
    assert run(home, "keys", "list").output == "k1 (primary)\n"
    assert _key_ids_in_the_file(home) == {"k1"}

    rotated = run(home, "keys", "rotate")
    assert rotated.exit_code == 0, rotated.output
    assert "state.sqlite3: re-sealed 1 secrets under k2" in rotated.output
    assert first_key not in rotated.output
    assert run(home, "keys", "list").output == "k2 (primary)\nk1\n"
    assert _key_ids_in_the_file(home) == {"k2"}
    keys = read_keyring_file(home)
    assert keys is not None
    assert [key_id for key_id, _ in keys] == ["k2", "k1"]
    assert keys[1][1].hex() == first_key
    assert (home / "keyring.key").stat().st_mode & 0o077 == 0

    # Every command reads the rotated ring: alice's code is still accepted.
    code = pyotp.TOTP(secret).at(int(time.time()) + 30)
    accepted = run(home, "totp", "verify", "alice", code)
    assert accepted.exit_code == 0, accepted.output

    retired = run(home, "keys", "retire")
    assert retired.exit_code == 0, retired.output
    assert "retired k1; k2 remains" in retired.output
    assert run(home, "keys", "list").output == "k2 (primary)\n"
    assert first_key not in (home / "keyring.key").read_text()
    # Without k1, alice's secret still opens: a used code is refused as replayed,
    # not as a key error.
    replayed = run(home, "totp", "verify", "alice", code)
    assert replayed.exit_code == 1
    assert "refused: replayed" in replayed.output
    assert "Error" not in replayed.output

    again = run(home, "keys", "rotate")
    assert again.exit_code == 0, again.output
    assert run(home, "keys", "list").output == "k3 (primary)\nk2\n"
    assert run(home, "keys", "retire").exit_code == 0
    assert run(home, "keys", "retire").output == "k3 is the only key: nothing to retire\n"
    assert _key_ids_in_the_file(home) == {"k3"}


def test_retire_keeps_the_old_key_while_a_named_store_still_needs_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _enrolled(home)
    other = tmp_path / "other.sqlite3"
    assert run(home, "keys", "rotate").exit_code == 0
    keys = read_keyring_file(home)
    assert keys is not None
    # A second store sealed with the old key, and one record under a key the home lacks.
    with SQLiteStore(other, keyring=Keyring(dict(keys[1:]), primary="k1")) as store:
        store.put_enrollment(
            Enrollment(subject="bob", method="totp", secret=Secret(b"b" * 20), created_at=T0)
        )
    with SQLiteStore(other, keyring=Keyring({"kx": bytes(32)}, primary="kx")) as store:
        store.put_enrollment(
            Enrollment(subject="eve", method="totp", secret=Secret(b"e" * 20), created_at=T0)
        )
    refused = run(home, "keys", "retire", "--database", str(other))
    assert refused.exit_code == 1
    assert "kx" in refused.output
    assert refused.output.count("\n") <= 2  # the home's report, then one error line
    # Nothing retired: the file still opens everything.
    assert run(home, "keys", "list").output == "k2 (primary)\nk1\n"


def test_rotate_refuses_a_key_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv(KEY_ENV, "11" * 32)
    refused = run(home, "keys", "rotate")
    assert refused.exit_code == 1
    assert KEY_ENV in refused.output
    assert not (home / "keyring.key").exists()


@pytest.mark.parametrize(
    "content",
    [
        "k2 " + "11" * 32 + "\nk2 " + "22" * 32 + "\n",  # the same id twice
        "k2 " + "11" * 31 + "\n",  # a short key
        "k2 " + "zz" * 32 + "\nk1 " + "22" * 32 + "\n",  # not hex
        "k 2 " + "11" * 32 + "\n",  # three fields
        "k/2 " + "11" * 32 + "\n",  # an id with a slash
        "# only a comment\n\n",
    ],
)
def test_a_malformed_ring_file_gives_one_line(tmp_path: Path, content: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "keyring.key").write_text(content)
    (home / "keyring.key").chmod(0o600)  # as we create it: a wider mode adds a warning
    for args in (("keys", "list"), ("totp", "verify", "alice", "123456")):
        result = run(home, *args)
        assert result.exit_code == 1, result.output
        assert result.output.startswith("Error: ")
        assert result.output.count("\n") == 1
        assert "11" * 8 not in result.output  # no key material in the message


def test_rotate_and_retire_reseal_every_database_named(tmp_path: Path) -> None:
    home, other = tmp_path / "home", tmp_path / "other.sqlite3"
    listed = run(home, "keys", "list")  # a listing makes no key (it used to make k1)
    assert (listed.exit_code, "no keys yet" in listed.output) == (1, True), listed.output
    assert not (home / "keyring.key").exists()
    first_key(home)
    keys = read_keyring_file(home)
    assert keys is None  # the first form: one key, id k1
    first = bytes.fromhex((home / "keyring.key").read_text().strip())
    with SQLiteStore(other, keyring=Keyring({"k1": first}, primary="k1")) as store:
        for name in ("bob", "carol"):
            store.put_enrollment(
                Enrollment(subject=name, method="totp", secret=Secret(name.encode()), created_at=T0)
            )
    rotated = run(home, "keys", "rotate", "--database", str(other))
    assert rotated.exit_code == 0, rotated.output
    # The home has no state.sqlite3 yet: only the database named is re-sealed.
    assert f"{other}: re-sealed 2 secrets under k2" in rotated.output
    assert not (home / "state.sqlite3").exists()
    assert run(home, "keys", "retire", "--database", str(other)).exit_code == 0
    keys = read_keyring_file(home)
    assert keys is not None
    assert [key_id for key_id, _ in keys] == ["k2"]
    with SQLiteStore(other, keyring=Keyring(dict(keys), primary="k2")) as store:
        got = store.get_enrollment("carol", "totp")
        assert got is not None
        assert got.secret.reveal() == b"carol"


def test_a_named_database_that_does_not_exist_is_refused_before_anything_changes(
    tmp_path: Path,
) -> None:
    # A typo used to open (create) an empty store, "re-seal 0" and, with retire, drop the
    # key every secret of the real database is sealed under.
    home, typo = tmp_path / "home", tmp_path / "typo.sqlite3"
    _enrolled(home)
    assert run(home, "keys", "rotate").exit_code == 0
    refused = run(home, "keys", "retire", "--database", str(typo))
    assert refused.exit_code == 1, refused.output
    assert "no such SQLite file" in refused.output
    assert not typo.exists()
    assert run(home, "keys", "list").output == "k2 (primary)\nk1\n"
    # rotate checks before it writes the ring; a conninfo's password is never shown.
    conninfo = "host=db user=app password=hunter2"
    refused = run(home, "keys", "rotate", "--database", conninfo)
    assert refused.exit_code == 1, refused.output
    assert "hunter2" not in refused.output
    assert not (Path.cwd() / conninfo).exists()
    assert run(home, "keys", "list").output == "k2 (primary)\nk1\n"


def test_retire_with_no_store_at_all_keeps_the_old_keys(tmp_path: Path) -> None:
    # serve --database postgresql://... leaves no HOME/state.sqlite3: a retire naming
    # nothing checked nothing and dropped the key that database needs.
    home = tmp_path / "home"
    assert run(home, "keys", "rotate").exit_code == 0
    assert not (home / "state.sqlite3").exists()
    refused = run(home, "keys", "retire")
    assert refused.exit_code == 1, refused.output
    assert "--database" in refused.output
    assert run(home, "keys", "list").output == "k2 (primary)\nk1\n"


def test_a_second_keys_command_at_once_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    # Two rotations at once each wrote a ring without the other's new key: the secrets
    # re-sealed by the first one were lost. The lock is the one the commands take.
    home = tmp_path / "home"
    _enrolled(home)
    fd = os.open(home / ".keyring.key.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for args in (("keys", "rotate"), ("keys", "retire")):
            refused = run(home, *args)
            assert refused.exit_code == 1, refused.output
            assert "this home's keys are in use" in refused.output
        assert run(home, "keys", "list").output == "k1 (primary)\n"
    finally:
        os.close(fd)
    assert run(home, "keys", "rotate").exit_code == 0  # free again
    assert run(home, "keys", "list").output == "k2 (primary)\nk1\n"


def test_rotate_never_proposes_an_id_the_ring_has(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "keyring.key").write_text("k999999999 " + "11" * 32 + "\n")
    (home / "keyring.key").chmod(0o600)
    for _ in range(2):
        rotated = run(home, "keys", "rotate")
        assert rotated.exit_code == 0, rotated.output
    listed = run(home, "keys", "list")
    assert listed.exit_code == 0, listed.output
    assert listed.output == "k1000000001 (primary)\nk1000000000\nk999999999\n"


def test_rotate_and_retire_refuse_while_serve_runs_on_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A running serve keeps the ring it read at start and seals new enrollments under
    # its primary: a retire meanwhile dropped the key those need after a restart.
    pytest.importorskip("uvicorn")
    import uvicorn  # noqa: PLC0415 (the web extra)

    home = tmp_path / "home"
    _enrolled(home)
    assert run(home, "keys", "rotate").exit_code == 0
    during: list[Result] = []

    def serving(*args: object, **kwargs: object) -> None:
        during.extend(run(home, "keys", command) for command in ("retire", "rotate"))

    monkeypatch.setattr(uvicorn, "run", serving)
    served = CliRunner().invoke(main, ["serve", "--home", str(home), "--port", "8765"])
    assert served.exit_code == 0, served.output
    assert [r.exit_code for r in during] == [1, 1], [r.output for r in during]
    assert all("stop `macnss-auth serve`" in r.output for r in during)
    assert run(home, "keys", "list").output == "k2 (primary)\nk1\n"
    # Once it stopped, they run.
    assert run(home, "keys", "retire").exit_code == 0
    assert run(home, "keys", "list").output == "k2 (primary)\n"


def test_serve_does_not_start_while_the_keys_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("uvicorn")
    import uvicorn  # noqa: PLC0415 (the web extra)

    home = tmp_path / "home"
    home.mkdir()
    started: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: started.append(a))
    fd = os.open(home / ".keyring.key.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as keys rotate holds it
        refused = CliRunner().invoke(main, ["serve", "--home", str(home), "--port", "8765"])
    finally:
        os.close(fd)
    assert refused.exit_code == 1, refused.output
    assert "changing this home's keys" in refused.output
    assert started == []


def _keyring_records(path: Path) -> list[dict[str, Any]]:
    return [record for record in load_events(path) if record["method"] == "keyring"]


def test_rotate_and_retire_are_recorded_in_the_home_audit_log(tmp_path: Path) -> None:
    # A directory named by date: its digits must not make the screen refuse the record
    # after the ring has changed.
    home, other = tmp_path / "home", tmp_path / "2026-12-06" / "other.sqlite3"
    _enrolled(home)
    other.parent.mkdir()
    first = bytes.fromhex((home / "keyring.key").read_text().strip())
    with SQLiteStore(other, keyring=Keyring({"k1": first}, primary="k1")) as store:
        for name in ("bob", "carol"):
            store.put_enrollment(
                Enrollment(subject=name, method="totp", secret=Secret(name.encode()), created_at=T0)
            )
    assert run(home, "keys", "rotate", "--database", str(other)).exit_code == 0
    assert run(home, "keys", "retire", "--database", str(other)).exit_code == 0

    rotated, retired = _keyring_records(home / "state.sqlite3")
    assert (rotated["action"], rotated["outcome"]) == ("rotate_keys", "success")
    assert rotated["details"] == {
        "primary": "k2",
        "previous": "k1",
        "resealed": f"state.sqlite3=1; {other}=2",
    }
    assert (retired["action"], retired["outcome"]) == ("retire_keys", "success")
    assert retired["details"] == {
        "primary": "k2",
        "retired": "k1",
        "resealed": f"state.sqlite3=0; {other}=0",
    }
    # Never a key's value, and the chain still verifies.
    log = (home / "state.sqlite3").read_bytes()
    assert first.hex().encode() not in log
    keys = read_keyring_file(home)
    assert keys is not None
    assert keys[0][1].hex().encode() not in log
    verified = CliRunner().invoke(main, ["audit", "verify", str(home / "state.sqlite3")])
    assert verified.exit_code == 0, verified.output
    assert verified.output.startswith("OK: ")
    shown = CliRunner().invoke(main, ["audit", "show", str(home / "state.sqlite3")])
    assert [line.split()[3:5] for line in shown.output.splitlines()[-2:]] == [
        ["rotate_keys", "keyring"],
        ["retire_keys", "keyring"],
    ]


def test_keys_without_a_home_store_record_in_serves_audit_file(tmp_path: Path) -> None:
    # serve --database postgresql://... keeps its log in HOME/audit.sqlite3: so do these.
    home, other = tmp_path / "home", tmp_path / "other.sqlite3"
    first_key(home)
    SQLiteStore(other, keyring=Keyring({"k1": bytes(32)}, primary="k1")).close()
    assert run(home, "keys", "rotate", "--database", str(other)).exit_code == 0
    assert not (home / "state.sqlite3").exists()
    (record,) = _keyring_records(home / "audit.sqlite3")
    assert record["action"] == "rotate_keys"
    assert record["details"]["resealed"] == f"{other}=0"


def test_a_rotation_that_fails_part_way_is_recorded_as_a_failure(tmp_path: Path) -> None:
    home, broken = tmp_path / "home", tmp_path / "broken.sqlite3"
    _enrolled(home)
    broken.write_bytes(b"not a database" * 100)
    failed = run(home, "keys", "rotate", "--database", str(broken))
    assert failed.exit_code != 0
    # The ring has k2 and the home's secret is sealed under it: the log says so.
    assert run(home, "keys", "list").output == "k2 (primary)\nk1\n"
    (record,) = _keyring_records(home / "state.sqlite3")
    assert (record["action"], record["outcome"]) == ("rotate_keys", "failure")
    assert record["details"]["resealed"] == "state.sqlite3=1"
    assert record["details"]["error"]
    verified = CliRunner().invoke(main, ["audit", "verify", str(home / "state.sqlite3")])
    assert verified.exit_code == 0, verified.output


def test_a_key_file_others_may_read_is_used_with_one_warning(tmp_path: Path) -> None:
    # A copied or restored file (or a Kubernetes secret volume, 0644 and read-only).
    home = tmp_path / "home"
    first_key(home)
    assert run(home, "keys", "list").stderr == ""  # created 0600: nothing to say
    path = home / "keyring.key"
    path.chmod(0o644)
    # The first form is read twice (as a ring, then as one key): one warning.
    listed = run(home, "keys", "list")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout == "k1 (primary)\n"
    assert listed.stderr.count("warning:") == 1, listed.stderr
    assert str(path) in listed.stderr
    assert "(mode 0644)" in listed.stderr
    assert f"chmod 600 {path}" in listed.stderr
    assert path.read_text().strip() not in listed.stderr
    (home / "oob-pepper.key").write_text("22" * 32 + "\n")
    (home / "oob-pepper.key").chmod(0o640)  # group-readable is warned about too
    sent = run(home, "code", "send", "alice", "--channel", "sms")
    assert f"chmod 600 {home / 'oob-pepper.key'}" in sent.stderr, sent.output


def test_a_key_file_anyone_may_write_is_refused(tmp_path: Path) -> None:
    # Anyone on the machine could put their own key there (and forge what it protects).
    home = tmp_path / "home"
    assert run(home, "keys", "rotate").exit_code == 0
    path = home / "keyring.key"
    before = path.read_text()
    keys = read_keyring_file(home)
    assert keys is not None
    path.chmod(0o666)
    for args in (("keys", "list"), ("keys", "rotate"), ("totp", "verify", "alice", "123456")):
        refused = run(home, *args)
        assert refused.exit_code == 1, refused.output
        assert refused.output.startswith("Error: "), refused.output
        assert refused.output.count("\n") == 1, refused.output
        assert f"chmod 600 {path}" in refused.output
        assert all(key.hex() not in refused.output for _, key in keys)  # never a key
    assert path.read_text() == before
    path.chmod(0o600)
    assert run(home, "keys", "list").output == "k2 (primary)\nk1\n"


def test_rotate_says_stays_for_one_old_key_and_stay_for_several(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first_key(home)
    assert "k1 stays in keyring.key" in run(home, "keys", "rotate").output
    assert "k2, k1 stay in keyring.key" in run(home, "keys", "rotate").output


_ring_lines = st.lists(
    st.one_of(
        st.text(max_size=80),
        st.builds(
            lambda kid, key, sep: f"{kid}{sep}{key}",
            st.text(max_size=8),
            st.sampled_from(["11" * 32, "1" * 63, "gg" * 32, "\u0661\u0661" * 32, ""]),
            st.sampled_from([" ", "\t", "  ", "", " x "]),
        ),
    ),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(content=st.one_of(st.binary(max_size=300), _ring_lines.map("\n".join).map(str.encode)))
def test_any_keyring_file_reads_as_keys_or_a_configuration_error(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        (home / "keyring.key").write_bytes(content)
        (home / "keyring.key").chmod(0o600)
        outcome: list[tuple[str, bytes]] | ConfigurationError | None
        try:
            outcome = read_keyring_file(home)
        except ConfigurationError as exc:
            outcome = exc
    if isinstance(outcome, ConfigurationError):
        assert "11" * 8 not in str(outcome)  # never key material in the message
    else:
        for key_id, key in outcome or []:
            assert re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", key_id)
            assert len(key) == 32

"""``macnss-auth code``: enroll, confirm, send, verify through the real CLI and SQLite store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from macnss_auth.cli import main
from macnss_auth.cli.code import PEPPER_ENV, load_pepper
from macnss_auth.delivery import find_code
from macnss_auth.errors import ConfigurationError


def run(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["code", *args, "--home", str(home)])
    return result.exit_code, result.stdout, result.stderr


def challenge_id(output: str) -> str:
    match = re.search(r"^challenge: (\S+)$", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def test_enroll_confirm_send_verify(tmp_path: Path) -> None:
    code, out, _ = run(tmp_path, "enroll", "alice", "--email", "alice@example.org", "--lang", "en")
    assert code == 0, out
    assert "a•••@example.org" in out
    assert "alice@example.org" not in out.split("---\n")[-1]
    enroll_id = challenge_id(out)
    code, out, _ = run(tmp_path, "confirm", enroll_id, find_code(out))
    assert (code, out.strip()) == (0, "confirmed: a•••@example.org (email)")

    code, out, _ = run(tmp_path, "send", "alice", "--channel", "email", "--lang", "ar")
    assert code == 0, out
    assert "\u2066" in out
    login_id = challenge_id(out)
    sent = find_code(out)

    code, _, err = run(tmp_path, "verify", login_id, "000000" if sent != "000000" else "111111")
    assert code == 1
    assert err.strip() == "refused: invalid_code, 4 attempts left"
    code, out, _ = run(tmp_path, "verify", login_id, sent)
    assert (code, out.strip()) == (0, "authenticated: alice (email, low)")
    code, _, err = run(tmp_path, "verify", login_id, sent)
    assert (code, err.strip()) == (1, "refused: challenge_used")


def test_phone_enrollment_to_an_outbox_file(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.txt"
    code, out, _ = run(
        tmp_path, "enroll", "bob", "--phone", "06 12 34 56 78", "--outbox", str(outbox)
    )
    assert code == 0, out
    assert "+212 6•• ••• •78" in out
    message = outbox.read_text(encoding="utf-8")
    assert "est votre code" in message
    code, out, _ = run(tmp_path, "confirm", challenge_id(out), find_code(message))
    assert code == 0, out


def test_unknown_subject_looks_the_same_and_gets_nothing(tmp_path: Path) -> None:
    code, out, _ = run(tmp_path, "send", "nobody", "--channel", "sms", "--json")
    assert code == 0
    assert '"method":"sms"' in out
    assert "---" not in out  # No message was printed.


def test_usage_errors(tmp_path: Path) -> None:
    assert run(tmp_path, "enroll", "x", "--phone", "123")[0] == 2
    assert run(tmp_path, "enroll", "x")[0] == 2
    assert run(tmp_path, "enroll", "x", "--phone", "0612345678", "--email", "a@b.org")[0] == 2
    assert run(tmp_path, "verify", "no-such-id", "123456")[:1] == (1,)
    out = run(tmp_path, "send", "nobody", "--channel", "sms")[1]
    assert run(tmp_path, "verify", challenge_id(out), "12ab56")[0] == 2


def test_resend_is_rate_limited(tmp_path: Path) -> None:
    run(tmp_path, "send", "nobody", "--channel", "sms")
    code, _, err = run(tmp_path, "send", "nobody", "--channel", "sms")
    assert code == 1
    assert err.startswith("refused: rate_limited (retry after")


def test_pepper_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_pepper(tmp_path)
    assert (tmp_path / "oob-pepper.key").stat().st_mode & 0o777 == 0o600
    assert load_pepper(tmp_path) == first
    monkeypatch.setenv(PEPPER_ENV, "00" * 32)
    assert load_pepper(tmp_path).reveal() == bytes(32)
    monkeypatch.setenv(PEPPER_ENV, "zz")
    with pytest.raises(ConfigurationError):
        load_pepper(tmp_path)

"""A kiosk that logs people in: configuration, language screen, CAN/MRZ/PIN, audit.

The card is the virtual one, in process (``MemoryTransport``) and over nfcpy's
``udp`` driver through the ``macnss-auth kiosk --config`` command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from macnss_auth.audit.files import load_events, verify_file
from macnss_auth.cli.reading import load_trust
from macnss_auth.clock import SystemClock
from macnss_auth.errors import ConfigurationError
from macnss_auth.nfc.card import VirtualCard, issue_card, load_card, save_card
from macnss_auth.nfc.kiosk import KioskOutcome, KioskResult
from macnss_auth.nfc.kiosk_config import (
    KioskConfig,
    authenticator_for,
    build_kiosk,
    load_kiosk_config,
)
from macnss_auth.nfc.mrz import check_digit
from macnss_auth.nfc.serve import MemoryTransport, UdpCardServer
from macnss_auth.testing import FixedRandom
from macnss_auth.testing.pki import TestPki

SUBJECT = "member-42"
NUMBER, BIRTH, EXPIRY = "AB1234567", "900115", "350101"  # issue_card's default Person


def _write_config(directory: Path, *, device: str = "pcsc", extra: str = "") -> Path:
    secrets = directory / "secrets.toml"
    secrets.write_text(
        f'binding_key = "{"11" * 32}"\nstore_key = "{"22" * 32}"\naudit_chain_key = "{"33" * 32}"\n'
    )
    secrets.chmod(0o600)
    config = directory / "kiosk.toml"
    config.write_text(
        f"""
secrets = "secrets.toml"

[kiosk]
id = "casa-anfa-01"
languages = ["ar", "fr", "en"]
fallbacks = ["totp", "sms"]
{extra}

[reader]
device = "{device}"
card_timeout = 30
challenge_ttl = 90

[trust]
path = "card/trust"

[store]
sqlite = "state/kiosk.sqlite3"

[audit]
jsonl = "state/audit.jsonl"

[people]
lookup = "identifier"
"""
    )
    (directory / "state").mkdir(exist_ok=True)
    return config


@pytest.fixture(scope="module")
def cards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("cards")
    clock = SystemClock()
    pki = TestPki.create(now=clock.now(), key_type="ec")  # one issuer: one trust directory
    save_card(issue_card("cnie", clock=clock, can="123456", pki=pki), directory / "cnie")
    save_card(issue_card("passport-bac", clock=clock, pki=pki), directory / "passport")
    save_card(issue_card("eid-pin", clock=clock, pin="246810", pki=pki), directory / "pin")
    return directory


@pytest.fixture
def site(tmp_path: Path, cards: Path) -> Path:
    (tmp_path / "card").symlink_to(cards / "cnie")
    return tmp_path


def _run_kiosk(
    config: KioskConfig, card_dir: Path, answers: list[str], *, seed: int = 1
) -> tuple[KioskResult, list[str]]:
    said: list[str] = []
    typed = iter(answers)

    def ask(prompt: str) -> str:
        said.append(prompt)
        try:
            return next(typed)
        except StopIteration:
            raise EOFError from None

    card = VirtualCard(load_card(card_dir), random=FixedRandom(seed))
    assert config.trust is not None
    kiosk = build_kiosk(
        config,
        connect=lambda: MemoryTransport(card),
        trust_store=load_trust(str(config.trust)),
        ask=ask,
        say=said.append,
        random=FixedRandom(seed + 1),
    )
    return kiosk.serve_one(), said


def _enroll(config: KioskConfig, *, document_number: str = NUMBER) -> None:
    assert config.trust is not None
    authenticator = authenticator_for(config, trust_store=load_trust(str(config.trust)))
    assert authenticator is not None
    authenticator.enroll(SUBJECT, document_number=document_number)


def test_the_configuration_file_is_loaded(site: Path) -> None:
    config = load_kiosk_config(_write_config(site))
    assert config.kiosk_id == "casa-anfa-01"
    assert config.device == "pcsc"
    assert config.languages == ("ar", "fr", "en")
    assert config.choose_language is True
    assert config.password == "can"
    assert config.fallbacks == ("totp", "sms")
    assert (config.card_timeout, config.challenge_ttl) == (30.0, 90.0)
    assert config.trust == (site / "card" / "trust").resolve()
    assert config.store == (site / "state" / "kiosk.sqlite3").resolve()
    assert config.audit == (site / "state" / "audit.jsonl").resolve()
    assert config.secrets is not None
    assert config.secrets.binding_key.reveal() == bytes.fromhex("11" * 32)
    assert "11" * 8 not in repr(config)


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ('"ar", "fr", "en"', '"fr", "zgh"', "zgh"),
        ("[people]", '[people]\nlookup = "phone"\n[other]', "people.lookup"),
        ("card_timeout = 30", 'card_timeout = "soon"', "reader.card_timeout"),
        ('id = "casa-anfa-01"', "", "kiosk.id"),
        ('device = "pcsc"', "", "reader.device"),
        ("jsonl =", "where =", "audit.jsonl"),
    ],
)
def test_a_bad_configuration_names_the_key(site: Path, old: str, new: str, named: str) -> None:
    path = _write_config(site)
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(ConfigurationError, match=named):
        load_kiosk_config(path)


@pytest.mark.parametrize(
    "digits",
    [400, 5000],  # float() raised OverflowError; tomllib let int()'s ValueError out
)
def test_an_endless_number_is_a_configuration_error(site: Path, digits: int) -> None:
    path = _write_config(site)
    path.write_text(path.read_text().replace("card_timeout = 30", "card_timeout = " + "9" * digits))
    with pytest.raises(ConfigurationError, match=r"card_timeout|TOML"):
        load_kiosk_config(path)


@pytest.mark.parametrize("name", ["kiosk.toml", "secrets.toml"])
def test_a_file_that_is_not_utf8_is_a_configuration_error(site: Path, name: str) -> None:
    _write_config(site)
    with (site / name).open("ab") as file:
        file.write(b"# \xff\n")  # was UnicodeDecodeError
    with pytest.raises(ConfigurationError, match="not TOML"):
        load_kiosk_config(site / "kiosk.toml")


def test_a_secrets_file_others_can_read_is_refused(site: Path) -> None:
    path = _write_config(site)
    (site / "secrets.toml").chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        load_kiosk_config(path)


def test_a_kiosk_session_logs_an_enrolled_person_in_and_audits_it(site: Path) -> None:
    config = load_kiosk_config(_write_config(site))
    _enroll(config)
    result, said = _run_kiosk(config, site / "card", ["2", SUBJECT, "123456"])
    assert result.outcome is KioskOutcome.SIGNED_IN
    assert result.language == "fr"
    assert result.auth is not None
    assert result.auth.subject == SUBJECT
    assert result.auth.method == "eid"
    text = "\n".join(said)
    arabic = "\u2067\u0627\u0644\u0639\u0631\u0628\u064a\u0629\u2069"  # العربية, isolated
    assert f"1. {arabic}\n2. Français\n3. English" in text  # the language screen
    assert "Vous êtes connecté\nFATIMA ZAHRA BENANI" in text
    assert "Place your identity card" not in text  # French only once chosen
    events = load_events(config.audit)  # type: ignore[arg-type]
    success = [e for e in events if e["action"] == "verify" and e["outcome"] == "success"]
    assert len(success) == 1
    assert result.auth.audit_event_id
    assert success[0]["subject"] == SUBJECT
    assert success[0]["method"] == "eid"
    assert success[0]["client"]["client_id"] == "casa-anfa-01"
    assert success[0]["details"]["assurance"] == "high"
    assert success[0]["details"]["mode"] == "kiosk"
    verify_file(config.audit, key=bytes.fromhex("33" * 32))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("answer", "language"),
    [("²", "ar"), ("9" * 5000, "ar"), ("\u0662", "fr"), ("fr", "fr")],
    ids=["superscript", "endless", "arabic-indic", "code"],
)
def test_any_language_answer_picks_a_language(site: Path, answer: str, language: str) -> None:
    # "²" is a digit that int() refuses, and 5000 digits pass its limit: both used to crash
    # the language screen with ValueError; the first language is the fallback.
    config = load_kiosk_config(_write_config(site))
    _enroll(config)
    result, _ = _run_kiosk(config, site / "card", [answer, SUBJECT, "123456"])
    assert result.language == language
    assert result.outcome is KioskOutcome.SIGNED_IN


def test_someone_elses_card_does_not_log_them_in(site: Path) -> None:
    config = load_kiosk_config(_write_config(site))
    _enroll(config, document_number="ZZ9999999")
    result, said = _run_kiosk(config, site / "card", ["3", SUBJECT, "123456"])
    assert result.outcome is KioskOutcome.NOT_THEIR_CARD
    assert result.auth is None
    text = "\n".join(said)
    assert "This card does not belong to the person signing in." in text
    assert "You can also sign in with: Code from an authenticator app, Code by SMS" in text
    events = load_events(config.audit)  # type: ignore[arg-type]
    assert [e["reason"] for e in events if e["action"] == "verify"] == ["document_mismatch"]


def _with_digit(value: str) -> str:
    return f"{value}{check_digit(value)}"


def test_a_bac_passport_opens_with_the_typed_mrz_and_check_digits_are_checked(
    site: Path, cards: Path
) -> None:
    config = load_kiosk_config(_write_config(site))
    _enroll(config)
    wrong_digit = NUMBER + str((check_digit(NUMBER) + 1) % 10)
    mrz = [wrong_digit, _with_digit(NUMBER), "9001", _with_digit(BIRTH), _with_digit(EXPIRY)]
    # A person who types a CAN for a passport that has none is told to use the MRZ.
    result, said = _run_kiosk(config, cards / "passport", ["3", SUBJECT, "123456", *mrz])
    assert result.outcome is KioskOutcome.SIGNED_IN, said
    text = "\n".join(said)
    assert "This document opens with the machine-readable zone" in text
    # Said twice: after the wrong check digit, and after a date too short to have one.
    assert text.count("The last digit does not match what you typed before it") == 2
    # One who knows there is no CAN presses Enter and goes straight to the MRZ.
    result, said = _run_kiosk(config, cards / "passport", ["3", SUBJECT, "", *mrz[1:]], seed=5)
    assert result.outcome is KioskOutcome.SIGNED_IN, said
    assert "machine-readable zone (the lines" not in "\n".join(said)


def test_a_superscript_check_digit_is_a_wrong_check_digit(site: Path, cards: Path) -> None:
    # "²" passes isdigit() and int() refuses it: the MRZ screen crashed with ValueError.
    config = load_kiosk_config(_write_config(site))
    _enroll(config)
    mrz = [NUMBER + "²", _with_digit(NUMBER), _with_digit(BIRTH), _with_digit(EXPIRY)]
    result, said = _run_kiosk(config, cards / "passport", ["3", SUBJECT, "", *mrz])
    assert result.outcome is KioskOutcome.SIGNED_IN, said
    assert "\n".join(said).count("The last digit does not match what you typed before it") == 1


def test_a_wrong_pin_says_how_many_tries_are_left(site: Path, cards: Path) -> None:
    path = _write_config(site, extra='password = "pin"')
    config = load_kiosk_config(path)
    _enroll(config)
    result, said = _run_kiosk(config, cards / "pin", ["3", SUBJECT, "999999"])
    assert result.outcome is KioskOutcome.WRONG_PASSWORD
    text = "\n".join(said)
    assert "Wrong PIN" in text
    assert "2 tries left" in text


def test_the_pin_never_reaches_the_audit_log_the_store_or_the_screen(
    site: Path, cards: Path
) -> None:
    config = load_kiosk_config(_write_config(site, extra='password = "pin"'))
    _enroll(config)
    wrong, said_wrong = _run_kiosk(config, cards / "pin", ["3", SUBJECT, "999999"])
    assert wrong.outcome is KioskOutcome.WRONG_PASSWORD
    right, said_right = _run_kiosk(config, cards / "pin", ["3", SUBJECT, "246810"], seed=3)
    assert right.outcome is KioskOutcome.SIGNED_IN, said_right
    assert config.audit is not None
    assert config.store is not None
    audit = config.audit.read_bytes()
    assert b'"outcome":"success"' in audit  # the login was audited...
    stored = b"".join(path.read_bytes() for path in config.store.parent.iterdir() if path.is_file())
    for pin in ("999999", "246810"):  # ...and neither PIN went anywhere
        assert pin.encode() not in audit
        assert pin.encode() not in stored
        assert pin not in "\n".join([*said_wrong, *said_right, repr(right), repr(wrong)])


def test_arabic_tries_use_arabic_plural_forms(site: Path, cards: Path) -> None:
    config = load_kiosk_config(_write_config(site, extra='password = "pin"'))
    _enroll(config)
    result, said = _run_kiosk(config, cards / "pin", ["1", SUBJECT, "999999"])
    assert result.outcome is KioskOutcome.WRONG_PASSWORD
    assert "محاولتان متبقيتان" in "\n".join(said)


@pytest.fixture
def served(cards: Path) -> Iterator[str]:
    card = VirtualCard(load_card(cards / "cnie"), random=FixedRandom(1))
    with UdpCardServer(card) as server:
        yield server.device_path


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "macnss_auth", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def test_the_kiosk_command_logs_an_enrolled_person_in_over_nfcpy_udp(
    site: Path, served: str
) -> None:
    path = _write_config(site, device=served)
    enrolled = _cli(
        "kiosk", "--config", str(path), "--enroll", SUBJECT, "--document-number", NUMBER
    )
    assert enrolled.returncode == 0, enrolled.stderr
    done = _cli("kiosk", "--config", str(path), "--once", stdin=f"3\n{SUBJECT}\n123456\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "You are signed in\nFATIMA ZAHRA BENANI" in done.stdout
    events = load_events(site / "state" / "audit.jsonl")
    assert [(e["action"], e["outcome"]) for e in events] == [
        ("enroll", "success"),
        ("begin", "info"),
        ("verify", "success"),
    ]


def test_three_wrong_check_digits_end_with_the_mrz_message_in_arabic(
    site: Path, cards: Path
) -> None:
    config = load_kiosk_config(_write_config(site))
    _enroll(config)
    wrong = NUMBER + str((check_digit(NUMBER) + 1) % 10)
    result, said = _run_kiosk(config, cards / "passport", ["1", SUBJECT, "", wrong, wrong, wrong])
    assert result.outcome is KioskOutcome.WRONG_PASSWORD
    assert result.language == "ar"
    text = "\n".join(said)
    assert "منطقة القراءة الآلية غير صحيحة" in text  # wrong MRZ, not "wrong number"
    assert "الرقم غير صحيح" not in text
    # Fallback names in Arabic, joined with the Arabic comma.
    assert "رمز من تطبيق المصادقة، رمز عبر رسالة قصيرة" in text
    events = load_events(config.audit)  # type: ignore[arg-type]
    assert [e["action"] for e in events] == ["enroll", "begin"]  # the card was never read


def test_the_plain_kiosk_command_opens_a_bac_passport_with_the_mrz(cards: Path) -> None:
    """The symptom in issue 15: a BAC-only passport got "Wrong number" after its CAN prompt."""
    card = VirtualCard(load_card(cards / "passport"), random=FixedRandom(3))
    mrz = "\n".join(_with_digit(value) for value in (NUMBER, BIRTH, EXPIRY))
    with UdpCardServer(card) as server:
        done = _cli(
            "kiosk", "--device", server.device_path, "--trust", str(cards / "cnie" / "trust"),
            "--once", stdin=f"123456\n{mrz}\n",
        )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "This document opens with the machine-readable zone" in done.stdout
    assert "Card verified" in done.stdout
    assert "Wrong number" not in done.stdout

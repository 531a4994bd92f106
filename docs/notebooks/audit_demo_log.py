"""A realistic audit log, written by the library's real authenticators on a fixed clock.

``python docs/notebooks/audit_demo_log.py OUT.sqlite3`` (or ``write_demo_log``
from the notebook) simulates a week at an agency: people log in by eID over
NFC (a virtual card read in process), by TOTP app, or by SMS or e-mail codes;
some mistype, a few get locked out, some SMS deliveries fail. Everything in
the log comes from ``TotpAuthenticator``, ``SMSCodeAuthenticator``,
``EmailCodeAuthenticator`` and ``EidAuthenticator`` themselves; the script
only decides who does what, with a seeded random generator, so every run
writes the same events.

People *without NFC* (about a third) never use eID. The agency's app says
in its user agent whether the phone can read the card (``nfc=yes|no``): the
notebook finds them by it.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import random
import sys
from pathlib import Path

import pyotp

from macnss_auth.audit import AuditKeys, AuditSigner, SQLiteAuditLog
from macnss_auth.authenticator import ClientContext
from macnss_auth.delivery import ChannelKind
from macnss_auth.errors import AuthenticationFailed, DeliveryError, MacnssAuthError
from macnss_auth.nfc.card import VirtualCard, issue_card
from macnss_auth.nfc.eid import EidAuthenticator
from macnss_auth.nfc.mrz import CAN
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.nfc.reader import DocumentReader
from macnss_auth.nfc.serve import MemoryTransport
from macnss_auth.otp.contacts import parse_email, parse_phone, put_destination
from macnss_auth.otp.oob import EmailCodeAuthenticator, InlineDispatcher, SMSCodeAuthenticator
from macnss_auth.otp.totp import TotpAuthenticator
from macnss_auth.secret import Secret
from macnss_auth.store import Keyring, MemoryStore
from macnss_auth.testing import CapturingChannel, FixedClock, FixedRandom
from macnss_auth.throttle import ThrottlePolicy

__all__ = ["APPLICATION_KEY", "SIGNER_SEED", "START", "write_demo_log"]

APPLICATION_KEY = b"demo application key: 32+ bytes, never use in production"
SIGNER_SEED = bytes(range(32))
START = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)  # a Monday
PEPPER = Secret(b"demo pepper: 32 random bytes, kept outside the store!")
CAN_NUMBER = "123456"


def write_demo_log(
    path: str | Path, *, people: int = 60, days: int = 7, seed: int = 2026, eid_reads: int = 60
) -> int:
    """Write the simulated week to the SQLite audit log at ``path``; return its record count.

    The log is keyed (HMAC chain key and pseudonym key derived from
    :data:`APPLICATION_KEY`) and signs an Ed25519 checkpoint every 50 records
    with the key from :data:`SIGNER_SEED`.
    """
    rng = random.Random(seed)  # noqa: S311 (a reproducible simulation, not a secret)
    keys = AuditKeys.derive(APPLICATION_KEY)
    signer = AuditSigner.from_seed(SIGNER_SEED)
    audit = SQLiteAuditLog(
        path,
        chain_key=keys.chain,
        pseudonym_key=keys.pseudonym,
        signer=signer,
        checkpoint_every=50,
    )
    clock = FixedClock(START)
    store = MemoryStore(keyring=Keyring.generate())
    throttle = ThrottlePolicy(lockout_after=5, lockout_duration=3600.0)
    sms_channel = CapturingChannel(ChannelKind.SMS, name="smpp")
    mail_channel = CapturingChannel(ChannelKind.EMAIL, name="smtp")
    common = {
        "store": store,
        "pepper": PEPPER,
        "clock": clock,
        "random": FixedRandom(seed),
        "audit": audit,
        "throttle": throttle,
        "dispatcher": InlineDispatcher(),
        "service_name": "CNSS",
        "sleep": lambda _seconds: None,
    }
    sms = SMSCodeAuthenticator(channel=sms_channel, **common)  # type: ignore[arg-type]
    email = EmailCodeAuthenticator(channel=mail_channel, **common)  # type: ignore[arg-type]
    totp = TotpAuthenticator(store=store, audit=audit, clock=clock, throttle_policy=throttle)
    card = issue_card("cnie", clock=clock, can=CAN_NUMBER)
    trust = TrustStore()
    trust.load_master_list(card.master_list, trust_as_is=True)  # the test CSCA just issued
    eid = EidAuthenticator(
        store=store, audit=audit, trust_store=trust, binding_key=bytes(32), clock=clock
    )

    # Who is who: a third without NFC; each person has a habit.
    population = []
    for index in range(people):
        subject = f"CNIE-{100000 + index * 7919:06d}"
        nfc = rng.random() > 0.35
        choices = ["eid", "totp", "sms", "email"] if nfc else ["totp", "sms", "email"]
        weights = [5, 2, 4, 1] if nfc else [2, 5, 2]
        habit = rng.choices(choices, weights)[0]
        population.append((subject, nfc, habit))
    totp_secrets: dict[str, bytes] = {}
    for number, (subject, _nfc, habit) in enumerate(population):
        if habit == "totp":
            secret = rng.randbytes(20)
            totp_secrets[subject] = secret
            totp.enroll(subject, secret=secret)
            totp.confirm(subject, _totp(secret).at(clock.now()))
        elif habit == "sms":
            put_destination(
                store, subject, parse_phone(f"+2126{61000000 + number * 379:08d}"), now=clock.now()
            )
        elif habit == "email":
            put_destination(
                store, subject, parse_email(f"person{number}@example.ma"), now=clock.now()
            )
        elif habit == "eid":
            # A demo shortcut: one virtual card stands for every eID holder's own card.
            eid.enroll(subject, document_number="AB1234567")

    kiosks = [ClientContext(client_id=f"kiosk-casa-{n:02d}", ip=f"10.20.30.{n}") for n in (1, 2)]
    # The agency's app says in its user agent whether the phone can read the card.
    apps = {
        nfc: ClientContext(
            client_id="mobile-app",
            ip="192.0.2.10",
            user_agent=f"cnss-app/4.2 (android; nfc={'yes' if nfc else 'no'})",
        )
        for nfc in (True, False)
    }
    reads = 0
    for day in range(days):
        # Not everyone logs in every day; the day's sessions in time order (the clock never
        # runs backwards).
        sessions = sorted(
            (rng.randrange(10 * 60), person) for person in population if rng.random() < 0.55
        )
        for minute, (subject, nfc, habit) in sessions:
            clock.set(max(clock.now(), START + dt.timedelta(days=day, minutes=minute)))
            context = rng.choice(kiosks) if rng.random() < 0.3 else apps[nfc]
            method = habit
            if method == "eid" and reads >= eid_reads:
                method = "sms" if nfc else "totp"
            try:
                if method == "eid":
                    reads += 1
                    _eid_login(eid, card, subject, rng, context)
                elif method == "totp":
                    _totp_login(totp, subject, totp_secrets.get(subject), clock, rng, context)
                else:
                    channel = sms_channel if method == "sms" else mail_channel
                    auth = sms if method == "sms" else email
                    _code_login(auth, channel, subject, rng, context)
            except (AuthenticationFailed, DeliveryError, MacnssAuthError):
                # Failures are what the log is for; the authenticators recorded them.
                continue
    audit.checkpoint(at=clock.now())
    count = audit.head().sequence
    audit.close()
    return count


def _totp(secret: bytes) -> pyotp.TOTP:
    return pyotp.TOTP(base64.b32encode(secret).decode())


def _totp_login(  # noqa: PLR0917 (a private helper of a script)
    totp: TotpAuthenticator,
    subject: str,
    secret: bytes | None,
    clock: FixedClock,
    rng: random.Random,
    context: ClientContext,
) -> None:
    if secret is None:
        # Someone whose habit is not TOTP tries it anyway: not enrolled.
        totp.verify_code(subject, "000000", context=context)
        return
    # One in six mistypes (a few repeatedly: those end up locked out).
    tries = 1 if rng.random() > 1 / 6 else rng.choice([1, 2, 6])
    for _ in range(tries):
        with contextlib.suppress(AuthenticationFailed):
            totp.verify_code(subject, f"{rng.randrange(10**6):06d}", context=context)
        clock.advance(5)
    clock.advance(31)
    totp.verify_code(subject, _totp(secret).at(clock.now()), context=context)


def _code_login(
    auth: SMSCodeAuthenticator | EmailCodeAuthenticator,
    channel: CapturingChannel,
    subject: str,
    rng: random.Random,
    context: ClientContext,
) -> None:
    if rng.random() < 0.08:
        # The gateway is down (SMSC timeout, SMTP 451): the delivery fails, and is audited.
        channel.fail_with([DeliveryError("gateway unavailable", retryable=False)])
    delivered = len(channel.messages)
    challenge = auth.begin(subject, context=context)
    if len(channel.messages) == delivered:
        return  # nothing arrived: the person gives up (or asks for a resend later)
    code = channel.last_code()
    if rng.random() < 0.12:
        wrong = "999999" if code != "999999" else "111111"
        with contextlib.suppress(AuthenticationFailed):
            auth.verify(challenge.id, wrong, context=context)
    auth.verify(challenge.id, code, context=context)


def _eid_login(
    eid: EidAuthenticator, card: object, subject: str, rng: random.Random, context: ClientContext
) -> None:
    challenge = eid.begin(subject, context=context)
    transport = MemoryTransport(VirtualCard(card.data, random=FixedRandom(rng.randrange(99))))  # type: ignore[attr-defined]
    reader = DocumentReader(transport, random=FixedRandom(rng.randrange(99)))
    document = reader.read(
        CAN(CAN_NUMBER), active_auth_challenge=bytes.fromhex(challenge.data["nonce"])
    )
    eid.verify(challenge, document, context=context)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "audit-demo.sqlite3")
    print(f"{write_demo_log(target)} records written to {target}")  # noqa: T201 (a script)

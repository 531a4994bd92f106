"""``macnss-auth demo``: the whole journey on embedded defaults.

Everything is real except the citizens: a SQLite state file under
``./demo-data`` that also holds the hash-chained audit log (each decision and
its record are one commit), a virtual eID card served over nfcpy's ``udp``
link on loopback and read through nfcpy's own ISO-DEP stack (by a kiosk, then
by the reference phone app, whose messages reach the server as the JSON the
``/v1/phone`` WebSocket carries), codes "sent" by SMS and e-mail printed on
this console, an authenticator app played by pyotp, and a phone's passkey
played by the virtual WebAuthn authenticator (``passkey`` extra).
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import click
import pyotp

from macnss_auth.audit.events import AuditLog
from macnss_auth.audit.files import verify_file
from macnss_auth.audit.sqlite import SQLiteAuditLog
from macnss_auth.authenticator import AssuranceLevel
from macnss_auth.cli.code import load_pepper
from macnss_auth.cli.home import load_key, load_keyring
from macnss_auth.cli.serve import PASSKEY_DECOY_KEY_ENV, default_methods
from macnss_auth.clock import Clock, RandomSource, SystemClock, SystemRandom
from macnss_auth.delivery import ChannelKind, ConsoleChannel, find_code
from macnss_auth.errors import AuthenticationFailed
from macnss_auth.nfc.card import IssuedCard, VirtualCard, issue_card, save_card
from macnss_auth.nfc.card.issuer import Person
from macnss_auth.nfc.eid import EidAuthenticator
from macnss_auth.nfc.mrz import CAN
from macnss_auth.nfc.phone import (
    SERVER_MESSAGES,
    PhoneMode,
    ReferencePhone,
    decode_message,
    encode_message,
)
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.nfc.reader import DocumentReader
from macnss_auth.nfc.serve import UdpCardServer
from macnss_auth.nfc.transports import NfcpyTransport
from macnss_auth.otp.oob import EmailCodeAuthenticator, InlineDispatcher, SMSCodeAuthenticator
from macnss_auth.otp.totp import TotpAuthenticator
from macnss_auth.policy import Capability, Policy
from macnss_auth.store.base import Store
from macnss_auth.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from macnss_auth.passkey import PasskeyAuthenticator

__all__ = ["command"]

# audit.sqlite3: where demos before the combined layout kept the audit log.
_STATE_FILES = ("state.sqlite3", "audit.sqlite3")
# The passkey's origin: the address `macnss-auth serve` answers on.
_ORIGIN = "http://localhost:8000"


def _title(text: str) -> None:
    click.secho(f"\n== {text}", bold=True)


def _fresh(home: Path) -> None:
    """Start each demo from empty state (keys are kept)."""
    for name in _STATE_FILES:
        for suffix in ("", "-wal", "-shm", "-journal"):
            (home / f"{name}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(home / "card", ignore_errors=True)


def _passkeys(
    home: Path, *, store: Store, audit: AuditLog, clock: Clock, random: RandomSource
) -> PasskeyAuthenticator | None:
    """The passkey method, or None without the ``passkey`` extra (py_webauthn)."""
    try:
        from macnss_auth.passkey import PasskeyAuthenticator  # noqa: PLC0415 (the extra)
    except ImportError:
        return None
    return PasskeyAuthenticator(
        store=store, audit=audit, clock=clock, random=random, rp_id="localhost",
        origins=[_ORIGIN], rp_name="CNSS",
        decoy_key=load_key(home, "passkey-decoy.key", PASSKEY_DECOY_KEY_ENV),
    )  # fmt: skip


def _phone_login(
    policy: Policy, eid: EidAuthenticator, card: IssuedCard, random: RandomSource
) -> None:
    """Split mode: the phone reads the card, the server runs Chip Authentication through it."""
    challenge = policy.begin("fatima", "eid")
    session = eid.phone_session(challenge)
    with UdpCardServer(VirtualCard(card.data, random=random)) as server:
        # nfcpy's udp link stands in for the phone's NFC radio.
        link = NfcpyTransport(server.device_path, timeout=10)
        link.connect()
        try:
            phone = ReferencePhone(
                link, challenge_id=challenge.id, mode=PhoneMode.SPLIT, password=CAN("123456"),
                random=random, nonce=bytes.fromhex(challenge.data["nonce"]),
            )  # fmt: skip
            pending, trips, sent, received = phone.start(), 0, 0, 0
            while pending:  # what the app and `serve` exchange over the WebSocket
                wire = [encode_message(message) for message in pending]
                replies = [reply for text in wire for reply in session.receive(text)]
                trips += 1
                sent += sum(map(len, wire))
                received += sum(map(len, replies))
                pending = [
                    out
                    for reply in replies
                    for out in phone.handle(decode_message(reply, accept=SERVER_MESSAGES))
                ]
        finally:
            link.close()
    result = policy.verify(challenge, session)
    click.echo(
        f"{trips} round trips: phone -> server {sent} bytes of JSON, server -> phone {received}"
    )
    click.echo(f"fatima: {result.assurance.name} assurance ({result.details['proof']})")


def _passkey_login(policy: Policy, passkeys: PasskeyAuthenticator | None) -> None:
    """Register a passkey (after a code login, in the real service), then log in with it."""
    if passkeys is None:
        click.echo("skipped: install the passkey extra (pip install 'macnss-auth[passkey]')")
        return
    from macnss_auth.passkey.virtual import VirtualAuthenticator  # noqa: PLC0415 (the extra)

    phone = VirtualAuthenticator(origin=_ORIGIN)  # the phone's screen lock and key store
    offers = [o.method for o in policy.offer([Capability.PASSKEY, Capability.SMS])]
    click.echo(f"offered: {offers}")
    registration = passkeys.begin_registration("karim", display_name="Karim")
    credential = passkeys.finish_registration(
        registration, phone.create(registration.data["options"]), name="Karim's phone"
    )
    click.echo(
        f"passkey registered: {credential.name!r}, attestation {credential.attestation.value}"
    )
    challenge = policy.begin("karim", "passkey")
    result = policy.verify(challenge, phone.get(challenge.data["options"]))
    click.echo(f"{result.subject}: {result.assurance.name} assurance by {result.method}")


@click.command("demo")
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    default="demo-data",
    show_default=True,
    help="Where the demo keeps its SQLite files, keys and the virtual card.",
)
def command(home: str) -> None:
    """Run the whole journey: eID at a kiosk and by phone, SMS, TOTP, passkey, fallback, audit."""
    root = Path(home)
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    _fresh(root)
    clock, random = SystemClock(), SystemRandom()
    store = SQLiteStore(root / "state.sqlite3", keyring=load_keyring(root))
    audit = SQLiteAuditLog.in_store(store)
    outbox = io.StringIO()
    click.echo(f"state and audit log: {store.path}")

    _title("1. The issuer makes a Moroccan-style eID card (virtual): PACE, AA and CA")
    fatima = Person()
    card = issue_card("cnie", clock=clock, can="123456", person=fatima)
    save_card(card, root / "card")
    trust = TrustStore()
    # The list was made a moment ago by this process: trusted as is (said below).
    trust.load_master_list(card.master_list, name="test CSCA master list", trust_as_is=True)
    click.echo(f"card saved in {root / 'card'}; CAN printed on the card: 123456")
    click.echo("trust: the test CSCA master list, trusted as is (this demo just made it)")

    eid = EidAuthenticator(
        store=store, audit=audit, trust_store=trust, clock=clock, random=random,
        binding_key=load_key(root, "eid-binding.key", "MACNSS_AUTH_EID_BINDING_KEY").reveal(),
    )  # fmt: skip
    totp = TotpAuthenticator(store=store, audit=audit, clock=clock, random=random, issuer="CNSS")
    pepper = load_pepper(root)
    sms = SMSCodeAuthenticator(
        channel=ConsoleChannel(ChannelKind.SMS, stream=outbox), store=store, audit=audit,
        clock=clock, random=random, pepper=pepper, service_name="CNSS", language="ar",
        dispatcher=InlineDispatcher(),
    )  # fmt: skip
    email = EmailCodeAuthenticator(
        channel=ConsoleChannel(ChannelKind.EMAIL, stream=outbox), store=store, audit=audit,
        clock=clock, random=random, pepper=pepper, service_name="CNSS", language="fr",
        dispatcher=InlineDispatcher(),
    )  # fmt: skip
    passkeys = _passkeys(root, store=store, audit=audit, clock=clock, random=random)
    methods = default_methods(eid=eid, totp=totp, sms=sms, email=email)
    if passkeys is not None:
        methods.insert(2, (passkeys, AssuranceLevel.SUBSTANTIAL))
    policy = Policy(authenticators=methods, store=store, clock=clock)
    click.echo("policy order: " + " > ".join(policy.methods))

    _title("2. Fatima at a kiosk: she taps her card on the reader")
    eid.enroll("fatima", document_number=fatima.document_number)
    offers = [o.method for o in policy.offer([Capability.NFC, Capability.APP, Capability.SMS])]
    click.echo(f"offered: {offers}")
    challenge = policy.begin("fatima", "eid")
    with UdpCardServer(VirtualCard(card.data, random=random)) as server:
        click.echo(f"card on nfcpy's udp link at {server.device_path}")
        transport = NfcpyTransport(server.device_path, timeout=10)
        transport.connect()
        try:
            document = DocumentReader(transport, random=random).read(
                CAN("123456"), active_auth_challenge=bytes.fromhex(challenge.data["nonce"])
            )
        finally:
            transport.close()
    result = policy.verify(challenge, document)
    click.echo(
        f"{result.claims['given_names']} {result.claims['surname']}: "
        f"{result.assurance.name} assurance ({result.details['proof']}), "
        f"{document.round_trips} APDUs over {document.access.value}"
    )

    _title("3. At home, Fatima's own phone reads her card; the server proves the chip")
    _phone_login(policy, eid, card, random)

    _title("4. Youssef has a basic phone: a code by SMS")
    offers = [o.method for o in policy.offer([Capability.SMS])]
    click.echo(f"offered: {offers}")
    enrolling = sms.enroll("youssef", "06 61 23 45 67")
    sms.confirm(enrolling, find_code(outbox.getvalue()))
    outbox.seek(0), outbox.truncate()
    challenge = policy.begin("youssef", "sms")
    click.echo(f"challenge hint: {challenge.hint}")
    click.echo(outbox.getvalue().rstrip())
    result = policy.verify(challenge, find_code(outbox.getvalue()))
    click.echo(f"youssef: {result.assurance.name} assurance by {result.method}")
    try:
        policy.verify(challenge, find_code(outbox.getvalue()))
    except AuthenticationFailed as exc:
        click.echo(f"the same code again: refused ({exc.reason.value})")

    _title("5. Amina has a smartphone without NFC: an authenticator app")
    provisioning = totp.enroll("amina", account="amina@cnss.example.ma")
    click.echo(provisioning.qr_terminal())
    click.echo(f"or type this key into the app: {provisioning.manual_entry_key}")
    app = pyotp.TOTP(provisioning.secret_base32)
    totp.confirm("amina", app.at(clock.now()))
    click.echo("enrollment confirmed with the app's first code")
    # Her phone's clock runs 30 s ahead: the next step's code is inside the ±1 window,
    # and the drift is recorded. (The current step was spent by the confirmation.)
    code = app.at(clock.now().timestamp() + totp.parameters.period)
    challenge = policy.begin("amina", "totp")
    result = policy.verify(challenge, code)
    click.echo(
        f"amina: {result.assurance.name} assurance by {result.method}, "
        f"clock drift {result.details.get('drift', '?')} step(s)"
    )
    try:
        policy.verify(policy.begin("amina", "totp"), code)
    except AuthenticationFailed as exc:
        click.echo(f"the same code replayed: refused ({exc.reason.value})")

    _title("6. Karim's smartphone has no NFC either: a passkey")
    _passkey_login(policy, passkeys)

    _title("7. Fatima's card is lost: the policy falls back")
    fallback = policy.fallback("eid", [Capability.APP, Capability.SMS])
    click.echo(f"next method for Fatima: {fallback.method if fallback else 'none'}")

    _title("8. The audit log")
    chain = verify_file(store.path)
    click.echo(f"{chain.count} events, hash chain intact; head {chain.head}")
    click.echo(f"check it yourself: macnss-auth audit verify {store.path}")
    store.close()

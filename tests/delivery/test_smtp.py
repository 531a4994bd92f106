"""SMTP delivery against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import pytest

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.delivery import (
    ChannelKind,
    DeliveryRejected,
    DeliveryTimeout,
    DeliveryUnavailable,
    OutboundMessage,
    RetryPolicy,
    SmtpChannel,
    find_code,
)
from macnss_auth.errors import ChallengeUsed, Reason
from macnss_auth.otp.contacts import parse_email, put_destination
from macnss_auth.otp.oob import CodeNotDelivered, EmailCodeAuthenticator, InlineDispatcher
from macnss_auth.secret import Secret
from macnss_auth.store import MemoryStore
from macnss_auth.testing import FixedClock
from tests.delivery.conftest import Mailbox, TlsMaterial, check_login, free_port

PEPPER = Secret(b"pepper-for-tests-only-0123456789abcdef")
PASSWORD = Secret(b"s3cret-password")


def plain(mail: EmailMessage) -> str:
    """The text/plain part of a received message."""
    part = mail.get_body(("plain",))
    assert part is not None
    text: str = part.get_content()
    return text


def message(text: str = "Your code is 123456.", language: str = "en") -> OutboundMessage:
    return OutboundMessage(
        kind=ChannelKind.EMAIL,
        to="alice@example.org",
        text=text,
        subject="Your code",
        language=language,
        hint="a•••@example.org",
    )


def test_plain_delivery_arrives_with_headers(smtp_factory: Any) -> None:
    box = Mailbox()
    port = smtp_factory(box)
    channel = SmtpChannel(
        "127.0.0.1", port, sender="noreply@cnss.example", security="none", timeout=5
    )
    receipt = channel.send(message("رمزك هو \u2066123456\u2069", language="ar"))
    assert receipt.channel == "smtp"
    assert receipt.message_id
    [mail] = box.messages
    assert mail["To"] == "alice@example.org"
    assert mail["Content-Language"] == "ar"
    assert mail["Message-ID"] == receipt.message_id
    assert box.envelopes == [("noreply@cnss.example", ["alice@example.org"])]
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "\u2066123456\u2069" in text
    assert find_code(text) == "123456"
    rich = mail.get_body(("html",))
    assert rich is not None
    assert 'dir="rtl"' in rich.get_content()
    assert "\u2066123456\u2069" in rich.get_content()


def test_starttls_with_auth(smtp_factory: Any, tls_material: TlsMaterial) -> None:
    box = Mailbox()
    port = smtp_factory(
        box,
        tls_context=tls_material.server_context(),
        require_starttls=True,
        authenticator=check_login,
        auth_required=True,
    )
    channel = SmtpChannel(
        "127.0.0.1",
        port,
        sender="noreply@cnss.example",
        sender_name="CNSS",
        username="mailer",
        password=PASSWORD,
        ssl_context=tls_material.client_context(),
        timeout=5,
    )
    channel.send(message())
    [mail] = box.messages
    assert find_code(plain(mail)) == "123456"
    assert "CNSS" in mail["From"]


def test_implicit_tls_with_auth(smtp_factory: Any, tls_material: TlsMaterial) -> None:
    box = Mailbox()
    port = smtp_factory(
        box,
        ssl_context=tls_material.server_context(),
        authenticator=check_login,
        # Implicit TLS: aiosmtpd only knows STARTTLS as "TLS" for AUTH purposes.
        auth_require_tls=False,
    )
    channel = SmtpChannel(
        "127.0.0.1",
        port,
        sender="noreply@cnss.example",
        security="tls",
        username="mailer",
        password=PASSWORD,
        ssl_context=tls_material.client_context(),
        timeout=5,
    )
    channel.send(message())
    assert find_code(plain(box.messages[0])) == "123456"


def test_wrong_password_is_not_retryable(smtp_factory: Any, tls_material: TlsMaterial) -> None:
    port = smtp_factory(
        Mailbox(),
        ssl_context=tls_material.server_context(),
        authenticator=check_login,
        # Implicit TLS: aiosmtpd only knows STARTTLS as "TLS" for AUTH purposes.
        auth_require_tls=False,
    )
    channel = SmtpChannel(
        "127.0.0.1",
        port,
        sender="noreply@cnss.example",
        security="tls",
        username="mailer",
        password=Secret(b"wrong"),
        ssl_context=tls_material.client_context(),
        timeout=5,
    )
    with pytest.raises(DeliveryRejected) as info:
        channel.send(message())
    assert info.value.retryable is False
    assert info.value.status == 535
    assert "wrong" not in str(info.value)


def test_untrusted_certificate_is_refused(smtp_factory: Any, tls_material: TlsMaterial) -> None:
    box = Mailbox()
    port = smtp_factory(box, ssl_context=tls_material.server_context())
    channel = SmtpChannel(
        "127.0.0.1", port, sender="noreply@cnss.example", security="tls", timeout=5
    )
    with pytest.raises(DeliveryRejected) as info:
        channel.send(message())
    assert not info.value.retryable
    assert box.messages == []


def test_refused_connection_is_retryable() -> None:
    channel = SmtpChannel(
        "127.0.0.1", free_port(), sender="noreply@cnss.example", security="none", timeout=2
    )
    with pytest.raises(DeliveryUnavailable) as info:
        channel.send(message())
    assert info.value.retryable


def test_silent_server_times_out(silent_server: int) -> None:
    channel = SmtpChannel(
        "127.0.0.1", silent_server, sender="noreply@cnss.example", security="none", timeout=0.3
    )
    with pytest.raises(DeliveryTimeout) as info:
        channel.send(message())
    assert info.value.retryable


@pytest.mark.parametrize(
    ("reply", "error", "retryable"),
    [
        ("550 5.1.1 No such user", DeliveryRejected, False),
        ("450 4.2.1 Mailbox busy", DeliveryUnavailable, True),
    ],
)
def test_recipient_replies_are_typed(
    smtp_factory: Any, reply: str, error: type[Exception], retryable: bool
) -> None:
    port = smtp_factory(Mailbox(reject_rcpt=reply))
    channel = SmtpChannel(
        "127.0.0.1", port, sender="noreply@cnss.example", security="none", timeout=5
    )
    with pytest.raises(error) as info:
        channel.send(message())
    assert getattr(info.value, "retryable", None) is retryable


def authenticator(channel: SmtpChannel, **kwargs: Any) -> EmailCodeAuthenticator:
    return EmailCodeAuthenticator(
        channel=channel,
        store=kwargs.pop("store", MemoryStore()),
        pepper=PEPPER,
        clock=kwargs.pop("clock", FixedClock.at(1_800_000_000)),
        dispatcher=InlineDispatcher(),
        service_name="CNSS",
        language="en",
        audit=kwargs.pop("audit", None) or MemoryAuditLog(),
        **kwargs,
    )


def test_enroll_and_login_over_real_smtp(smtp_factory: Any, tls_material: TlsMaterial) -> None:
    box = Mailbox()
    port = smtp_factory(box, tls_context=tls_material.server_context(), require_starttls=True)
    channel = SmtpChannel(
        "127.0.0.1",
        port,
        sender="noreply@cnss.example",
        ssl_context=tls_material.client_context(),
        timeout=5,
    )
    clock = FixedClock.at(1_800_000_000)
    auth = authenticator(channel, clock=clock)
    enrolling = auth.enroll("alice", "Alice@Example.ORG")
    assert enrolling.hint == "A•••@example.org"
    confirmed = auth.confirm(enrolling, find_code(plain(box.messages[-1])))
    assert confirmed.address == "Alice@example.org"
    clock.advance(60)
    challenge = auth.begin("alice")
    mail = box.messages[-1]
    assert mail["Subject"] == "Your CNSS code"
    assert mail["To"] == "Alice@example.org"
    result = auth.verify(challenge, find_code(plain(mail)))
    assert result.subject == "alice"
    assert result.method == "email"


def test_server_that_stalls_after_data_leaves_no_usable_code(smtp_factory: Any) -> None:
    """The message reached the server but the reply never came: the code is burnt."""
    box = Mailbox(stall_after_data=3.0)
    port = smtp_factory(box)
    channel = SmtpChannel(
        "127.0.0.1", port, sender="noreply@cnss.example", security="none", timeout=0.5
    )
    store = MemoryStore()
    audit = MemoryAuditLog()
    auth = authenticator(channel, store=store, audit=audit, retry=RetryPolicy(max_attempts=1))
    put_destination(store, "alice", parse_email("alice@example.org"), now=FixedClock.at(0).now())
    with pytest.raises(CodeNotDelivered) as info:
        auth.begin("alice")
    assert info.value.retryable
    assert isinstance(info.value.__cause__, DeliveryTimeout)
    assert box.received.wait(5)
    code = find_code(plain(box.messages[0]))
    with pytest.raises(ChallengeUsed) as used:
        auth.verify(info.value.challenge_id, code)
    assert used.value.reason is Reason.CHALLENGE_USED
    failures = [e for e in audit.events if e.action.value == "deliver"]
    assert [(e.outcome.value, e.reason) for e in failures] == [("failure", "delivery_failed")]
    assert failures[0].details["error"] == "DeliveryTimeout"


def test_refusing_server_retries_then_burns() -> None:
    closed = free_port()
    pauses: list[float] = []
    store = MemoryStore()
    auth = authenticator(
        SmtpChannel("127.0.0.1", closed, sender="n@cnss.example", security="none", timeout=1),
        store=store,
        retry=RetryPolicy(max_attempts=3, base_delay=0.25, deadline=10),
        sleep=pauses.append,
    )
    put_destination(store, "alice", parse_email("alice@example.org"), now=FixedClock.at(0).now())
    with pytest.raises(CodeNotDelivered) as info:
        auth.begin("alice")
    assert pauses == [0.25, 0.5]
    record = store.get_challenge(info.value.challenge_id)
    assert record is not None
    assert record.consumed


def test_hanging_server_times_out_and_leaves_no_code(silent_server: int) -> None:
    store = MemoryStore()
    auth = authenticator(
        SmtpChannel(
            "127.0.0.1", silent_server, sender="n@cnss.example", security="none", timeout=0.2
        ),
        store=store,
        retry=RetryPolicy(max_attempts=2, base_delay=0.01, deadline=5),
    )
    put_destination(store, "alice", parse_email("alice@example.org"), now=FixedClock.at(0).now())
    with pytest.raises(CodeNotDelivered) as info:
        auth.begin("alice")
    assert isinstance(info.value.__cause__, DeliveryTimeout)
    record = store.get_challenge(info.value.challenge_id)
    assert record is not None
    assert record.consumed

"""Regression tests for reviewed security findings in the delivery channels."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from macnss_auth.delivery import ChannelKind, DeliveryError, OutboundMessage
from macnss_auth.delivery import smtp as smtp_module
from macnss_auth.delivery._deadline import Watchdog
from macnss_auth.delivery.console import FileChannel
from macnss_auth.delivery.http_sms import HttpSmsGateway
from macnss_auth.delivery.smpp import SmppChannel
from macnss_auth.delivery.smtp import SmtpChannel
from macnss_auth.otp.contacts import Destination
from macnss_auth.secret import Secret
from tests.delivery.conftest import Mailbox
from tests.delivery.test_smpp import SmscStub


def test_smtp_header_injection_is_a_delivery_error_not_a_value_error() -> None:
    # Nothing listens on port 9: the message must be refused before any connection.
    channel = SmtpChannel("127.0.0.1", 9, sender="n@x.ma", security="none", timeout=1)
    message = OutboundMessage(
        kind=ChannelKind.EMAIL, to="a@b.example\r\nBcc: e@evil.example", text="123456"
    )
    with pytest.raises(DeliveryError) as info:
        channel.send(message)
    assert not info.value.retryable


def test_smtp_message_that_cannot_be_built_releases_its_watchdog(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A watchdog left armed keeps its timer thread until the deadline, one per refused message.
    armed: list[_RecordingWatchdog] = []

    class _RecordingWatchdog(Watchdog):
        def __init__(self, seconds: float) -> None:
            super().__init__(seconds)
            self.released = False
            armed.append(self)

        def release(self) -> None:
            self.released = True
            super().release()

    monkeypatch.setattr(smtp_module, "Watchdog", _RecordingWatchdog)
    channel = SmtpChannel("127.0.0.1", 9, sender="n@x.ma", security="none", timeout=1)
    message = OutboundMessage(kind=ChannelKind.EMAIL, to="a@b.example\r\nBcc: e@x", text="1")
    with pytest.raises(DeliveryError):
        channel.send(message)
    assert len(armed) == 1
    assert armed[0].released


class _GarbledSmsc:
    """Answers every PDU with a command id no SMPP version defines."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.listener.settimeout(2)
        self.port: int = self.listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(2)
            try:
                header = conn.recv(16)
                length, _command, _status, seq = struct.unpack(">IIII", header)
                conn.recv(length - 16)
                conn.sendall(struct.pack(">IIII", 16, 0x0BADBEEF, 0, seq))
                conn.recv(1024)
            except (OSError, struct.error):
                return

    def close(self) -> None:
        self.listener.close()
        self._thread.join(3)


@pytest.fixture
def garbled() -> Iterator[_GarbledSmsc]:
    server = _GarbledSmsc()
    yield server
    server.close()


def test_smpp_library_errors_become_delivery_errors(garbled: _GarbledSmsc) -> None:
    channel = SmppChannel(
        "127.0.0.1",
        garbled.port,
        system_id="cnss",
        password=Secret(b"secret"),
        source_addr="CNSS",
        timeout=2,
    )
    message = OutboundMessage(kind=ChannelKind.SMS, to="+212612345678", text="123456")
    with pytest.raises(DeliveryError):
        channel.send(message)


def test_smtp_sends_to_the_one_address_only(smtp_factory: Any) -> None:
    # Even a message whose "To" lists several addresses goes to "to" alone:
    # the envelope is never derived from the header.
    mailbox = Mailbox()
    port = smtp_factory(mailbox)
    channel = SmtpChannel("127.0.0.1", port, sender="n@x.ma", security="none", timeout=5)
    message = OutboundMessage(
        kind=ChannelKind.EMAIL, to="victim@x.example, attacker@evil.example", text="123456"
    )
    with contextlib.suppress(DeliveryError):
        channel.send(message)
    recipients = [rcpt for _, rcpts in mailbox.envelopes for rcpt in rcpts]
    assert "attacker@evil.example" not in recipients
    assert len(recipients) <= 1


def test_smpp_wire_log_shows_no_password_or_code_to_a_debug_root(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger, as a debugging operator would
    smsc = SmscStub(password="Pw7xq2Zk")
    try:
        channel = SmppChannel(
            "127.0.0.1",
            smsc.port,
            system_id="cnss",
            password=Secret(b"Pw7xq2Zk"),
            source_addr="CNSS",
            timeout=2,
        )
        channel.send(OutboundMessage(kind=ChannelKind.SMS, to="+212612345678", text="Code 493817"))
    finally:
        smsc.close()
    assert len(smsc.submitted) == 1
    text = caplog.text
    for secret in ("Pw7xq2Zk", b"Pw7xq2Zk".hex(), "493817", b"493817".hex()):
        assert secret not in text
    for number in ("212612345678", b"212612345678".hex()):
        assert number not in text


def test_smpp_wire_log_is_there_for_a_caller_who_asks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    smsc = SmscStub()
    try:
        channel = SmppChannel(
            "127.0.0.1",
            smsc.port,
            system_id="cnss",
            password=Secret(b"secret"),
            source_addr="CNSS",
            timeout=2,
            wire_logger="tests.smpp.wire",
        )
        channel.send(OutboundMessage(kind=ChannelKind.SMS, to="+212612345678", text="hi"))
    finally:
        smsc.close()
    assert any(record.name == "tests.smpp.wire" for record in caplog.records)


def test_file_channel_outbox_is_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        outbox = tmp_path / "outbox.txt"
        FileChannel(ChannelKind.SMS, path=outbox).send(
            OutboundMessage(kind=ChannelKind.SMS, to="+212612345678", text="Code 493817")
        )
    finally:
        os.umask(old)
    assert "493817" in outbox.read_text()
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o600


def test_reprs_show_no_more_than_the_hint() -> None:
    mail = Destination(kind=ChannelKind.EMAIL, address="zoe.quixby@example.org")
    phone = Destination(kind=ChannelKind.SMS, address="+212612345678")
    message = OutboundMessage(
        kind=ChannelKind.EMAIL, to="zoe.quixby@example.org", text="123456", hint=mail.hint
    )
    local = "zoe.quixby"
    for shown in (repr(mail), repr(message)):
        # The hint's one character of the local part, never any three in a row.
        assert not [local[i : i + 3] for i in range(len(local) - 2) if local[i : i + 3] in shown]
        assert "123456" not in shown
    assert mail.hint in repr(mail)
    assert "612" not in repr(phone)
    assert "5678" not in repr(phone)


def test_http_gateway_repr_hides_the_query_and_credentials() -> None:
    gateway = HttpSmsGateway(
        "https://user:pa55word@sms.example.ma/v1/send?api_key=K3YK3Y&x=1",
        body={"to": "${to}", "text": "${text}"},
    )
    try:
        shown = repr(gateway)
    finally:
        gateway.close()
    assert "sms.example.ma/v1/send" in shown
    for secret in ("K3YK3Y", "api_key", "pa55word", "user"):
        assert secret not in shown


def test_http_gateway_never_raises_a_third_party_exception() -> None:
    # A header value httpx cannot encode fails as a DeliveryError, not UnicodeEncodeError.
    gateway = HttpSmsGateway(
        "http://127.0.0.1:9/send",
        body={"to": "${to}", "text": "${text}"},
        auth_header=("X-Key", Secret("clé".encode())),
        timeout=1,
    )
    try:
        with pytest.raises(DeliveryError) as info:
            gateway.send(OutboundMessage(kind=ChannelKind.SMS, to="+212612345678", text="1"))
    finally:
        gateway.close()
    assert not info.value.retryable

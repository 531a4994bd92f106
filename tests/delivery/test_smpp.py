"""The SMPP channel against a small SMPP 3.4 server written here (127.0.0.1)."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.delivery import (
    ChannelKind,
    DeliveryRejected,
    DeliveryTimeout,
    DeliveryUnavailable,
    OutboundMessage,
    find_code,
)
from macnss_auth.delivery.segments import GSM7_BASIC
from macnss_auth.delivery.smpp import SmppChannel
from macnss_auth.otp.contacts import parse_phone, put_destination
from macnss_auth.otp.oob import InlineDispatcher, SMSCodeAuthenticator
from macnss_auth.secret import Secret
from macnss_auth.store import MemoryStore
from macnss_auth.testing import FixedClock

BIND_TRANSCEIVER = 0x00000009
SUBMIT_SM = 0x00000004
UNBIND = 0x00000006
ENQUIRE_LINK = 0x00000015
GENERIC_NACK = 0x80000000
RESP = 0x80000000
ESME_RINVPASWD = 0x0E
ESME_RTHROTTLED = 0x58


@attrs.define
class Submitted:
    source_addr: str
    source_ton: int
    destination_addr: str
    dest_ton: int
    esm_class: int
    data_coding: int
    short_message: bytes

    def text(self) -> str:
        payload = self.short_message
        if self.esm_class & 0x40:
            payload = payload[payload[0] + 1 :]
        if self.data_coding == 8:
            return payload.decode("utf-16-be")
        return "".join(GSM7_BASIC[b] for b in payload)


def _cstring(body: bytes, at: int) -> tuple[str, int]:
    end = body.index(b"\x00", at)
    return body[at:end].decode("latin-1"), end + 1


def parse_submit_sm(body: bytes) -> Submitted:
    # SMPP 3.4 §4.4.1, mandatory parameters in order.
    _service_type, i = _cstring(body, 0)
    source_ton, _source_npi = body[i], body[i + 1]
    source, i = _cstring(body, i + 2)
    dest_ton, _dest_npi = body[i], body[i + 1]
    dest, i = _cstring(body, i + 2)
    esm_class = body[i]
    i += 3  # esm_class, protocol_id, priority_flag
    _schedule, i = _cstring(body, i)
    _validity, i = _cstring(body, i)
    data_coding = body[i + 2]
    sm_length = body[i + 4]
    short_message = body[i + 5 : i + 5 + sm_length]
    return Submitted(source, source_ton, dest, dest_ton, esm_class, data_coding, short_message)


class SmscStub:
    """Accepts binds and submit_sm; answers from a script of statuses."""

    def __init__(self, *, password: str = "secret", silent: bool = False) -> None:  # noqa: S107
        self.password = password
        self.silent = silent
        self.submit_statuses: list[int] = []
        self.submitted: list[Submitted] = []
        self.binds: list[tuple[str, str]] = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.listener.settimeout(0.05)
        self.port: int = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            with conn:
                if self.silent:
                    self._stop.wait(2)
                    continue
                self._session(conn)

    @staticmethod
    def _read(conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError
            data += chunk
        return data

    def _session(self, conn: socket.socket) -> None:
        conn.settimeout(2)
        counter = 0
        try:
            while True:
                length, command, _status, seq = struct.unpack(">IIII", self._read(conn, 16))
                body = self._read(conn, length - 16)
                if command == BIND_TRANSCEIVER:
                    system_id, i = _cstring(body, 0)
                    password, i = _cstring(body, i)
                    self.binds.append((system_id, password))
                    status = 0 if password == self.password else ESME_RINVPASWD
                    self._reply(conn, command | RESP, status, seq, b"stub\x00")
                    if status:
                        return
                elif command == SUBMIT_SM:
                    status = self.submit_statuses.pop(0) if self.submit_statuses else 0
                    if status == 0:
                        self.submitted.append(parse_submit_sm(body))
                        counter += 1
                    self._reply(conn, command | RESP, status, seq, f"id{counter}\x00".encode())
                elif command in (UNBIND, ENQUIRE_LINK):
                    self._reply(conn, command | RESP, 0, seq, b"")
                    if command == UNBIND:
                        return
                else:
                    self._reply(conn, GENERIC_NACK, 0x03, seq, b"")
        except (ConnectionError, TimeoutError, struct.error):
            return

    @staticmethod
    def _reply(conn: socket.socket, command: int, status: int, seq: int, body: bytes) -> None:
        conn.sendall(struct.pack(">IIII", 16 + len(body), command, status, seq) + body)


@pytest.fixture
def smsc() -> Iterator[SmscStub]:
    server = SmscStub()
    yield server
    server.close()


def channel(port: int, **kwargs: Any) -> SmppChannel:
    return SmppChannel(
        "127.0.0.1",
        port,
        system_id="cnss",
        password=kwargs.pop("password", Secret(b"secret")),
        source_addr="CNSS",
        timeout=kwargs.pop("timeout", 2.0),
    )


def sms(text: str) -> OutboundMessage:
    return OutboundMessage(kind=ChannelKind.SMS, to="+212612345678", text=text)


def test_gsm7_message_is_one_submit_sm(smsc: SmscStub) -> None:
    receipt = channel(smsc.port).send(sms("123456 est votre code CNSS. Ne le donnez à personne."))
    assert smsc.binds == [("cnss", "secret")]
    [sent] = smsc.submitted
    assert sent.destination_addr == "212612345678"
    assert sent.dest_ton == 1
    assert (sent.source_addr, sent.source_ton) == ("CNSS", 5)
    assert sent.data_coding == 0
    assert sent.esm_class == 0
    assert sent.text() == "123456 est votre code CNSS. Ne le donnez à personne."
    assert receipt.message_id == "id1"
    assert receipt.segments == 1


def test_long_arabic_message_is_concatenated_ucs2(smsc: SmscStub) -> None:
    text = "\u2066654321\u2069 هو رمز التحقق الخاص بك. " + "لا تشاركه مع أي أحد. " * 3
    assert len(text) > 70
    receipt = channel(smsc.port).send(sms(text))
    assert receipt.segments == len(smsc.submitted) == 2
    udh = [s.short_message[:6] for s in smsc.submitted]
    assert udh[0][:5] == udh[1][:5]  # same reference and part count
    assert [h[5] for h in udh] == [1, 2]
    assert all(s.data_coding == 8 and s.esm_class & 0x40 for s in smsc.submitted)
    assert "".join(s.text() for s in smsc.submitted) == text
    assert find_code(text) == "654321"


def test_wrong_password_is_rejected(smsc: SmscStub) -> None:
    with pytest.raises(DeliveryRejected) as info:
        channel(smsc.port, password=Secret(b"wrong")).send(sms("123456"))
    assert not info.value.retryable
    assert "wrong" not in str(info.value)


def test_throttled_submit_is_retryable(smsc: SmscStub) -> None:
    smsc.submit_statuses = [ESME_RTHROTTLED]
    with pytest.raises(DeliveryUnavailable) as info:
        channel(smsc.port).send(sms("123456"))
    assert info.value.retryable


def test_silent_smsc_times_out() -> None:
    server = SmscStub(silent=True)
    try:
        with pytest.raises(DeliveryTimeout):
            channel(server.port, timeout=0.3).send(sms("123456"))
    finally:
        server.close()


def test_login_code_over_smpp(smsc: SmscStub) -> None:
    store = MemoryStore()
    clock = FixedClock.at(1_800_000_000)
    put_destination(store, "alice", parse_phone("0612345678"), now=clock.now())
    auth = SMSCodeAuthenticator(
        channel=channel(smsc.port),
        store=store,
        audit=MemoryAuditLog(),
        pepper=Secret(b"k" * 32),
        clock=clock,
        dispatcher=InlineDispatcher(),
        language="ar",
        service_name="CNSS",
    )
    challenge = auth.begin("alice")
    text = "".join(s.text() for s in smsc.submitted)
    assert "\u2066" in text
    assert auth.verify(challenge, find_code(text)).subject == "alice"

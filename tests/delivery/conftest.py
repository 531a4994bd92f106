"""Real local servers for the delivery tests: SMTP (aiosmtpd), TLS material, free ports."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@attrs.frozen
class TlsMaterial:
    cert_path: Path
    key_path: Path
    cert_pem: bytes

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.cert_pem.decode())


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    """A throwaway self-signed certificate for 127.0.0.1 and localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "macnss-auth test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return TlsMaterial(cert_path=cert_path, key_path=key_path, cert_pem=cert_pem)


class Mailbox:
    """An aiosmtpd handler that keeps what it receives."""

    def __init__(self, *, reject_rcpt: str | None = None, stall_after_data: float = 0.0) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.reject_rcpt = reject_rcpt
        self.stall_after_data = stall_after_data
        self.received = threading.Event()

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if self.reject_rcpt is not None:
            return self.reject_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.received.set()
        if self.stall_after_data:
            await asyncio.sleep(self.stall_after_data)
        return "250 Message accepted"


def check_login(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login == b"mailer" and auth_data.password == b"s3cret-password"
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_factory() -> Iterator[Any]:
    """Start aiosmtpd controllers on 127.0.0.1 random ports; stopped after the test."""
    started: list[Controller] = []

    def start(handler: Mailbox, **kwargs: Any) -> int:
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        started.append(controller)
        return port

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port: int = listener.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield port
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    listener.close()


class TricklingServer:
    """A TCP server on 127.0.0.1 that answers slowly: one line (or byte) per ``interval``.

    Each connection runs ``session(conn, server)`` in its own thread. The
    session calls :meth:`trickle` to send one chunk every ``interval`` seconds
    until the client hangs up, the server stops, or ``give_up`` seconds pass
    (so a client without an overall deadline hangs for ``give_up``, not forever).
    """

    def __init__(
        self,
        session: Any,
        *,
        interval: float = 0.5,
        give_up: float = 30.0,
    ) -> None:
        self._session = session
        self.interval = interval
        self.give_up = give_up
        self.stop = threading.Event()
        self.connections = 0
        self.hung_up = 0
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(32)
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._conns.append(conn)
            thread = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, conn: socket.socket) -> None:
        conn.settimeout(self.give_up)
        try:
            self._session(conn, self)
        except OSError:
            # The client hung up (its deadline) or the server stopped.
            with self._lock:
                self.hung_up += 1
        finally:
            conn.close()

    def trickle(self, conn: socket.socket, chunk: bytes) -> None:
        """Send ``chunk`` every ``interval`` until the client leaves or time is up."""
        ends = time.monotonic() + self.give_up
        while not self.stop.is_set() and time.monotonic() < ends:
            conn.sendall(chunk)
            self.stop.wait(self.interval)
        raise ConnectionAbortedError("the trickle ended")

    def close(self) -> None:
        self.stop.set()
        self._acceptor.join(2)
        self._listener.close()
        for thread in self._threads:
            thread.join(5)


def read_line(conn: socket.socket) -> bytes:
    """One CRLF-terminated line from ``conn`` (b"" when the peer closed)."""
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = conn.recv(1)
        if not byte:
            break
        line += byte
    return bytes(line)


@pytest.fixture
def trickler() -> Iterator[Any]:
    """Start :class:`TricklingServer` instances; stopped after the test."""
    started: list[TricklingServer] = []

    def start(session: Any, **kwargs: Any) -> TricklingServer:
        server = TricklingServer(session, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()

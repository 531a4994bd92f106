"""E-mail over SMTP with the standard library: STARTTLS or implicit TLS, auth, timeouts.

One connection per message: codes are sent one at a time and a fresh
connection recovers by itself from a server that dropped an idle session.

Every attempt has an overall deadline (``deadline``, cut shorter by the
retry deadline of :func:`~macnss_auth.delivery.base.deliver`) from connect
to QUIT: ``timeout`` bounds each read, and a server that trickles ``220-``
continuation lines inside it would otherwise hold the sender for ever.

Failures are typed by what the caller does next (RFC 5321 §4.2.1): a 4yz
reply, a timeout, a refused or dropped connection are retryable; a 5yz reply
(unknown recipient, relay denied, failed authentication) and a TLS
certificate that does not verify are not.
"""

from __future__ import annotations

import contextlib
import html
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import ClassVar

from macnss_auth.delivery._deadline import Watchdog, attempt_seconds
from macnss_auth.delivery.base import (
    ChannelKind,
    DeliveryError,
    DeliveryReceipt,
    DeliveryRejected,
    DeliveryTimeout,
    DeliveryUnavailable,
    OutboundMessage,
    _typed_failures,
)
from macnss_auth.errors import ConfigurationError
from macnss_auth.secret import Secret

__all__ = ["SmtpChannel"]

_SECURITY = ("starttls", "tls", "none")
_RTL_LANGUAGES = frozenset({"ar", "fa", "he", "ur"})


class _BoundedSMTP(smtplib.SMTP):
    """smtplib's client with its socket under a :class:`Watchdog`.

    The socket is watched from the moment it exists (before the greeting is
    read) and released just before it is closed.
    """

    def __init__(
        self, watchdog: Watchdog, host: str, port: int, local_hostname: str | None, timeout: float
    ) -> None:
        self._watchdog = watchdog
        super().__init__(host, port, local_hostname, timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = socket.create_connection(
            (host, port), min(timeout, self._watchdog.left()), self.source_address
        )
        self._watchdog.watch(sock)
        return sock

    def close(self) -> None:
        self._watchdog.release()
        super().close()


class _BoundedSMTPSSL(smtplib.SMTP_SSL, _BoundedSMTP):
    """Implicit TLS: SMTP_SSL wraps the watched socket of :class:`_BoundedSMTP`."""

    def __init__(  # noqa: PLR0917 (smtplib's arguments plus the watchdog)
        self,
        watchdog: Watchdog,
        host: str,
        port: int,
        local_hostname: str | None,
        timeout: float,
        context: ssl.SSLContext,
    ) -> None:
        # SMTP_SSL calls SMTP.__init__ directly, past _BoundedSMTP.__init__.
        self._watchdog = watchdog
        smtplib.SMTP_SSL.__init__(
            self, host, port, local_hostname, timeout=timeout, context=context
        )


class SmtpChannel:
    """Sends e-mail through an SMTP submission server.

    Args:
        host / port: the server (587 for STARTTLS, 465 for implicit TLS).
        sender: the ``From`` address; ``sender_name`` its display name.
        security: ``"starttls"`` (default), ``"tls"`` (implicit, RFC 8314) or
            ``"none"`` (only for a relay on the same host).
        username / password: SMTP AUTH credentials, if the server wants them.
        timeout: seconds for the connection and for each reply.
        deadline: seconds one attempt may take in all, from connect to the
            last reply, however the server paces its answers.
        ssl_context: certificate verification settings; default: the
            system's trust store with hostname checking.
        local_hostname: the name given in EHLO.
    """

    kind: ClassVar[ChannelKind] = ChannelKind.EMAIL
    name: ClassVar[str] = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        sender_name: str | None = None,
        security: str = "starttls",
        username: str | None = None,
        password: Secret | None = None,
        timeout: float = 10.0,
        deadline: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if not timeout > 0 or not deadline > 0:
            raise ConfigurationError("timeout and deadline must be positive")
        if security not in _SECURITY:
            raise ConfigurationError(f"security must be one of {_SECURITY}")
        if (username is None) != (password is None):
            raise ConfigurationError("give both username and password, or neither")
        if security == "none" and username is not None:
            raise ConfigurationError("refusing to send a password without TLS")
        self.host = host
        self.port = port
        self.sender = sender
        self.sender_name = sender_name
        self.security = security
        self.username = username
        self._password = password
        self.timeout = timeout
        self.deadline = deadline
        self._ssl_context = ssl_context or ssl.create_default_context()
        self.local_hostname = local_hostname

    def __repr__(self) -> str:
        return f"SmtpChannel({self.host!r}, {self.port}, security={self.security!r})"

    def build(self, message: OutboundMessage) -> EmailMessage:
        """The MIME message that :meth:`send` submits."""
        mail = EmailMessage()
        domain = self.sender.rpartition("@")[2] or None
        mail["From"] = (
            formataddr((self.sender_name, self.sender)) if self.sender_name else self.sender
        )
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail["Message-ID"] = make_msgid(domain=domain)
        # RFC 3834: a machine wrote this; out-of-office responders must not answer it.
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(message.text, charset="utf-8")
        # Plain text has no direction; mail clients align Arabic text right only
        # when told, so an HTML alternative carries dir and lang.
        direction = "rtl" if message.language in _RTL_LANGUAGES else "ltr"
        paragraphs = "".join(
            f"<p>{html.escape(block).replace(chr(10), '<br>')}</p>"
            for block in message.text.strip().split("\n\n")
        )
        mail.add_alternative(
            f'<!DOCTYPE html><html lang="{html.escape(message.language)}" dir="{direction}">'
            f'<body dir="{direction}">{paragraphs}</body></html>',
            subtype="html",
            charset="utf-8",
        )
        # After set_content, which replaces every Content-* header.
        mail["Content-Language"] = message.language
        return mail

    def _connect(self, watchdog: Watchdog) -> smtplib.SMTP:
        timeout = min(self.timeout, watchdog.left())
        if self.security == "tls":
            return _BoundedSMTPSSL(
                watchdog, self.host, self.port, self.local_hostname, timeout, self._ssl_context
            )
        return _BoundedSMTP(watchdog, self.host, self.port, self.local_hostname, timeout)

    def _submit(self, mail: EmailMessage, to: str, watchdog: Watchdog) -> None:
        smtp = self._connect(watchdog)
        try:
            if self.security == "starttls":
                smtp.starttls(context=self._ssl_context)
            if self.username is not None and self._password is not None:
                smtp.login(self.username, self._password.reveal().decode("utf-8"))
            # The envelope is the one address, never the "To" header's list.
            smtp.send_message(mail, to_addrs=[to])
            # The message is accepted; a sloppy or slow QUIT changes nothing.
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
        finally:
            smtp.close()

    def send(self, message: OutboundMessage) -> DeliveryReceipt:
        """Submit ``message``.

        Raises:
            DeliveryTimeout: no answer within ``timeout``.
            DeliveryUnavailable: connection refused or dropped, or a 4yz reply.
            DeliveryRejected: a 5yz reply, failed authentication, TLS failure,
                or a message that cannot be built (a line break in an address).
        """
        watchdog = Watchdog(attempt_seconds(self.deadline))
        with _typed_failures(watchdog, "SMTP", self._failure):
            # Inside the block: a header the email package refuses (CR/LF in an
            # address) must surface as a DeliveryError, like any other failure.
            mail = self.build(message)
            self._submit(mail, message.to, watchdog)
        return DeliveryReceipt(channel=self.name, message_id=str(mail["Message-ID"]))

    def _failure(self, exc: Exception) -> DeliveryError | None:
        """The typed failure for ``exc``; None for an exception that is not SMTP's."""
        # TLS first: a certificate failure is also a ValueError.
        if isinstance(exc, ssl.SSLCertVerificationError):
            return DeliveryRejected("the SMTP server's certificate does not verify")
        if isinstance(exc, ssl.SSLError):
            return DeliveryRejected("TLS with the SMTP server failed")
        if isinstance(exc, (ValueError, TypeError)):
            return DeliveryRejected(f"the message cannot be built or sent: {type(exc).__name__}")
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()]
            code = codes[0] if codes else None
            if code is not None and 400 <= code < 500:
                return DeliveryUnavailable(f"the SMTP server deferred the recipient ({code})")
            return DeliveryRejected("the SMTP server refused the recipient", status=code)
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return DeliveryRejected(
                "the SMTP server lacks a required extension (STARTTLS, AUTH or SMTPUTF8)"
            )
        if isinstance(exc, smtplib.SMTPResponseException):
            code = exc.smtp_code
            if 400 <= code < 500:
                return DeliveryUnavailable(f"the SMTP server answered {code}, try later")
            return DeliveryRejected(f"the SMTP server answered {code}", status=code)
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            # smtplib reports a read timeout as a disconnection; the cause tells.
            if isinstance(exc.__context__, TimeoutError):
                return DeliveryTimeout(f"no answer from the SMTP server in {self.timeout} s")
            return DeliveryUnavailable("the SMTP server closed the connection")
        if isinstance(exc, TimeoutError):
            return DeliveryTimeout(f"the SMTP server did not answer within {self.timeout} s")
        if isinstance(exc, smtplib.SMTPException):
            return DeliveryUnavailable(f"SMTP failed: {type(exc).__name__}")
        if isinstance(exc, OSError):
            return DeliveryUnavailable(
                f"cannot reach the SMTP server: {exc.strerror or type(exc).__name__}"
            )
        return None

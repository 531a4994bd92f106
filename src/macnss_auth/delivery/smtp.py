"""E-mail over SMTP with the standard library: STARTTLS or implicit TLS, auth, timeouts.

One connection per message: codes are sent one at a time and a fresh
connection recovers by itself from a server that dropped an idle session.

Failures are typed by what the caller does next (RFC 5321 §4.2.1): a 4yz
reply, a timeout, a refused or dropped connection are retryable; a 5yz reply
(unknown recipient, relay denied, failed authentication) and a TLS
certificate that does not verify are not.
"""

from __future__ import annotations

import html
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from macnss_auth.delivery.base import (
    ChannelKind,
    DeliveryError,
    DeliveryReceipt,
    DeliveryRejected,
    DeliveryTimeout,
    DeliveryUnavailable,
    OutboundMessage,
)
from macnss_auth.errors import ConfigurationError
from macnss_auth.secret import Secret

__all__ = ["SmtpChannel"]

_SECURITY = ("starttls", "tls", "none")
_RTL_LANGUAGES = frozenset({"ar", "fa", "he", "ur"})


class SmtpChannel:
    """Sends e-mail through an SMTP submission server.

    Args:
        host / port: the server (587 for STARTTLS, 465 for implicit TLS).
        sender: the ``From`` address; ``sender_name`` its display name.
        security: ``"starttls"`` (default), ``"tls"`` (implicit, RFC 8314) or
            ``"none"`` (only for a relay on the same host).
        username / password: SMTP AUTH credentials, if the server wants them.
        timeout: seconds for the connection and for each reply.
        ssl_context: certificate verification settings; default: the
            system's trust store with hostname checking.
        local_hostname: the name given in EHLO.
    """

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
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
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
        self._ssl_context = ssl_context or ssl.create_default_context()
        self.local_hostname = local_hostname

    @property
    def kind(self) -> ChannelKind:
        return ChannelKind.EMAIL

    @property
    def name(self) -> str:
        return "smtp"

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

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            return smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
                context=self._ssl_context,
            )
        return smtplib.SMTP(
            self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout
        )

    def send(self, message: OutboundMessage) -> DeliveryReceipt:
        """Submit ``message``.

        Raises:
            DeliveryTimeout: no answer within ``timeout``.
            DeliveryUnavailable: connection refused or dropped, or a 4yz reply.
            DeliveryRejected: a 5yz reply, failed authentication, TLS failure,
                or a message that cannot be built (a line break in an address).
        """
        try:
            # Inside the try: a header the email package refuses (CR/LF in an
            # address) must surface as a DeliveryError, like any other failure.
            mail = self.build(message)
            with self._connect() as smtp:
                if self.security == "starttls":
                    smtp.starttls(context=self._ssl_context)
                if self.username is not None and self._password is not None:
                    smtp.login(self.username, self._password.reveal().decode("utf-8"))
                # The envelope is the one address, never the "To" header's list.
                smtp.send_message(mail, to_addrs=[message.to])
        except DeliveryError:
            raise
        except (ValueError, TypeError) as exc:
            raise DeliveryRejected(
                f"the message cannot be built or sent: {type(exc).__name__}"
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            code = codes[0] if codes else None
            if code is not None and 400 <= code < 500:
                raise DeliveryUnavailable(
                    f"the SMTP server deferred the recipient ({code})"
                ) from exc
            raise DeliveryRejected("the SMTP server refused the recipient", status=code) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryRejected(
                "the SMTP server lacks a required extension (STARTTLS, AUTH or SMTPUTF8)"
            ) from exc
        except smtplib.SMTPResponseException as exc:
            code = exc.smtp_code
            if 400 <= code < 500:
                raise DeliveryUnavailable(f"the SMTP server answered {code}, try later") from exc
            raise DeliveryRejected(f"the SMTP server answered {code}", status=code) from exc
        except smtplib.SMTPServerDisconnected as exc:
            # smtplib reports a read timeout as a disconnection; the cause tells.
            if isinstance(exc.__context__, TimeoutError):
                raise DeliveryTimeout(
                    f"no answer from the SMTP server in {self.timeout} s"
                ) from exc
            raise DeliveryUnavailable("the SMTP server closed the connection") from exc
        except TimeoutError as exc:
            raise DeliveryTimeout(
                f"the SMTP server did not answer within {self.timeout} s"
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryRejected("the SMTP server's certificate does not verify") from exc
        except ssl.SSLError as exc:
            raise DeliveryRejected("TLS with the SMTP server failed") from exc
        except smtplib.SMTPException as exc:
            raise DeliveryUnavailable(f"SMTP failed: {type(exc).__name__}") from exc
        except OSError as exc:
            raise DeliveryUnavailable(
                f"cannot reach the SMTP server: {exc.strerror or type(exc).__name__}"
            ) from exc
        return DeliveryReceipt(channel=self.name, message_id=str(mail["Message-ID"]))

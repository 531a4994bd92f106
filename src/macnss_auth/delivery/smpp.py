"""SMS over SMPP 3.4 (smpplib), for operators that take SMPP instead of HTTP.

Per message: connect, ``bind_transceiver``, one ``submit_sm`` per segment
(concatenated segments carry an 8-bit-reference user-data header, 3GPP TS
23.040 §9.2.3.24.1, and ``esm_class`` UDHI), wait for each
``submit_sm_resp``, ``unbind``, disconnect. A session per message is simple
and recovers from dropped links by itself; an operator that wants a
long-lived bind and ``enquire_link`` keep-alives needs a pooled client, which
this channel does not provide.

Text is GSM-7 (``data_coding`` 0, unpacked septets) when every character
fits, else UCS-2 (``data_coding`` 8): see :mod:`macnss_auth.delivery.segments`.

Every attempt has an overall deadline (``deadline``, cut shorter by the
retry deadline of :func:`~macnss_auth.delivery.base.deliver`): ``timeout``
bounds each read, and an SMSC that sends a PDU a byte at a time inside it
would otherwise hold the sender for ever.

Failures: timeouts and broken connections are retryable, and so are the
SMPP statuses ESME_RTHROTTLED (0x58), ESME_RMSGQFUL (0x14) and
ESME_RSYSERR (0x08); a refused bind (0x0D, 0x0E, 0x0F) or any other error
status is a rejection.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from typing import ClassVar

import smpplib.client
import smpplib.exceptions

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
from macnss_auth.delivery.segments import encode_segments
from macnss_auth.errors import ConfigurationError
from macnss_auth.secret import Secret

__all__ = ["WIRE_LOGGER", "SmppChannel"]

#: smpplib logs every PDU in hex at DEBUG: the bind password, the full
#: number and the text with its code. Its logger stays out of the
#: application's logs unless a caller passes ``wire_logger`` on purpose.
WIRE_LOGGER = "macnss_auth.delivery.smpp.wire"
_wire = logging.getLogger(WIRE_LOGGER)
_wire.propagate = False
_wire.setLevel(logging.WARNING)
_wire.addHandler(logging.NullHandler())

_RETRYABLE_STATUS = frozenset({0x08, 0x14, 0x58})
_ESM_UDHI = 0x40


class _BoundedClient(smpplib.client.Client):  # type: ignore[misc]  # smpplib is untyped
    """smpplib's client with its socket under a :class:`Watchdog`, released before closing."""

    def __init__(self, watchdog: Watchdog, *args: object, **kwargs: object) -> None:
        self._watchdog = watchdog
        super().__init__(*args, **kwargs)

    def _create_socket(self) -> socket.socket | ssl.SSLSocket:
        sock: socket.socket = super()._create_socket()
        self._watchdog.watch(sock)
        return sock

    def disconnect(self) -> None:
        self._watchdog.release()
        super().disconnect()


class SmppChannel:
    """Sends SMS to an SMSC over SMPP 3.4.

    Args:
        host / port: the SMSC.
        system_id / password: the bind credentials.
        source_addr: the sender (alphanumeric id or number).
        system_type: the ESME type, if the operator asks for one.
        timeout: seconds for connecting and for each response.
        deadline: seconds one attempt may take in all, from connect to the
            last response, however the SMSC paces its answers.
        wire_logger: the name of a logger for smpplib's PDU dumps, to debug
            a link. They hold the bind password, numbers and codes: never
            in production. By default they go nowhere (:data:`WIRE_LOGGER`
            neither propagates nor logs below WARNING).
    """

    kind: ClassVar[ChannelKind] = ChannelKind.SMS
    name: ClassVar[str] = "smpp"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        system_id: str,
        password: Secret,
        source_addr: str,
        system_type: str = "",
        timeout: float = 10.0,
        deadline: float = 30.0,
        wire_logger: str | None = None,
    ) -> None:
        if not timeout > 0 or not deadline > 0:
            raise ConfigurationError("timeout and deadline must be positive")
        self.host = host
        self._wire_logger = wire_logger or WIRE_LOGGER
        self.port = port
        self.system_id = system_id
        self._password = password
        self.source_addr = source_addr
        self.system_type = system_type
        self.timeout = timeout
        self.deadline = deadline
        self._reference = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SmppChannel({self.host!r}, {self.port}, system_id={self.system_id!r})"

    def _source_ton_npi(self) -> tuple[int, int]:
        # SMPP 3.4 §5.2.5-6: alphanumeric ids are TON 5 / NPI 0; short codes TON 3.
        if not self.source_addr.isdigit():
            return 5, 0
        if len(self.source_addr) <= 6:
            return 3, 0
        return 1, 1

    def _next_reference(self) -> int:
        with self._lock:
            self._reference = (self._reference + 1) % 256
            return self._reference

    def send(self, message: OutboundMessage) -> DeliveryReceipt:
        """Submit ``message`` as one or more ``submit_sm``.

        Raises:
            DeliveryTimeout: the SMSC did not answer within ``timeout``.
            DeliveryUnavailable: connection failure or a transient SMPP status.
            DeliveryRejected: the bind or the message was refused.
        """
        encoding, parts = encode_segments(message.text)
        if len(parts) > 1:
            reference = self._next_reference()
            parts = [
                bytes([0x05, 0x00, 0x03, reference, len(parts), i + 1]) + part
                for i, part in enumerate(parts)
            ]
        esm_class = _ESM_UDHI if len(parts) > 1 else 0
        src_ton, src_npi = self._source_ton_npi()
        watchdog = Watchdog(attempt_seconds(self.deadline))
        client = _BoundedClient(
            watchdog,
            self.host,
            self.port,
            timeout=min(self.timeout, watchdog.left()),
            allow_unknown_opt_params=True,
            logger_name=self._wire_logger,
        )
        message_ids: list[str] = []
        with _typed_failures(watchdog, "SMPP", self._failure):
            client.connect()
            try:
                bound = client.bind_transceiver(
                    system_id=self.system_id,
                    password=self._password.reveal().decode("utf-8"),
                    system_type=self.system_type,
                )
                self._check(bound, "bind")
                for part in parts:
                    client.send_message(
                        source_addr_ton=src_ton,
                        source_addr_npi=src_npi,
                        source_addr=self.source_addr,
                        dest_addr_ton=1,
                        dest_addr_npi=1,
                        destination_addr=message.to.removeprefix("+"),
                        short_message=part,
                        data_coding=encoding.data_coding,
                        esm_class=esm_class,
                        registered_delivery=0,
                    )
                    response = client.read_pdu()
                    self._check(response, "submit_sm")
                    message_ids.append(str(response.message_id or b"", "ascii", "replace"))
                # The messages are accepted; a sloppy unbind changes nothing.
                with contextlib.suppress(
                    smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError
                ):
                    client.unbind()
            finally:
                client.disconnect()
        return DeliveryReceipt(
            channel=self.name, message_id=",".join(message_ids) or None, segments=len(parts)
        )

    def _failure(self, exc: Exception) -> DeliveryError:
        """The typed failure for an exception out of smpplib or the socket."""
        if isinstance(exc, TimeoutError):
            return DeliveryTimeout(f"the SMSC did not answer within {self.timeout} s")
        if isinstance(exc, smpplib.exceptions.PDUError):
            return DeliveryRejected(f"the SMSC refused: {exc.args[0]}")
        if isinstance(exc, smpplib.exceptions.ConnectionError):
            # smpplib turns a read timeout during bind into ConnectionError.
            if isinstance(exc.__context__, TimeoutError):
                return DeliveryTimeout(f"the SMSC did not answer within {self.timeout} s")
            return DeliveryUnavailable("cannot reach the SMSC or the link broke")
        if isinstance(exc, OSError):
            return DeliveryUnavailable(f"SMPP link failed: {type(exc).__name__}")
        if isinstance(exc, smpplib.exceptions.UnknownCommandError):
            # A PDU no SMPP version defines: a confused or garbled link.
            return DeliveryUnavailable("the SMSC sent a PDU this client does not know")
        # The channel contract: never a third-party exception (MessageTooLong,
        # a parsing error inside smpplib...), so the caller burns the code.
        return DeliveryRejected(f"SMPP failed: {type(exc).__name__}")

    @staticmethod
    def _check(pdu: object, what: str) -> None:
        status = int(getattr(pdu, "status", 0) or 0)
        command = getattr(pdu, "command", "")
        if status == 0 and str(command).endswith("_resp"):
            return
        if status in _RETRYABLE_STATUS:
            raise DeliveryUnavailable(f"the SMSC asked to slow down ({what}, status {status:#x})")
        raise DeliveryRejected(f"the SMSC refused {what} (status {status:#x})", status=status)

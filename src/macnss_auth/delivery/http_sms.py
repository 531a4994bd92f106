"""SMS through an HTTP gateway, with a configurable request template (httpx).

Gateways differ in field names and encodings but agree on the shape: a POST
with the destination, the sender and the text, as JSON or as a form, and an
API key in a header. The request body is a template whose string values may
contain ``${to}``, ``${text}``, ``${sender}``, ``${segments}`` and
``${encoding}`` (:class:`string.Template` syntax: no attribute access or
format specs, so a template cannot reach into Python objects)::

    HttpSmsGateway(
        "https://sms.example.ma/v1/messages",
        body={"from": "${sender}", "to": "${to}", "content": "${text}"},
        auth_header=("Authorization", Secret(b"Bearer ...")),
        sender="CNSS",
    )

Every attempt has an overall deadline (``deadline``, cut shorter by the
retry deadline of :func:`~macnss_auth.delivery.base.deliver`): httpx's
``timeout`` bounds each read (httpx has no overall timeout: encode/httpx
issue 1450), and a gateway that sends one header line just inside it would
otherwise hold the sender for ever. The gateway's own client
enforces it on every read and write of the connection; a client you pass in
gets only the per-read timeout, so give it a transport from
:meth:`HttpSmsGateway.bounded_transport` to keep the deadline.

Status mapping: 2xx is success; 408, 425, 429 and 5xx are retryable; any
other 4xx is a rejection. Timeouts and connection failures are retryable.
"""

from __future__ import annotations

import contextvars
import ssl
import string
import time
import typing
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import httpcore
import httpx

from macnss_auth.delivery._deadline import attempt_seconds
from macnss_auth.delivery.base import (
    ChannelKind,
    DeliveryReceipt,
    DeliveryRejected,
    DeliveryTimeout,
    DeliveryUnavailable,
    OutboundMessage,
)
from macnss_auth.delivery.segments import sms_length
from macnss_auth.errors import ConfigurationError
from macnss_auth.secret import Secret

__all__ = ["HttpSmsGateway"]

_RETRYABLE_STATUS = frozenset({408, 425, 429})
# The time.monotonic() instant by which the current request must be done.
_request_ends: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "macnss_auth_http_sms_request_ends", default=None
)


def _clamp(timeout: float | None) -> float | None:
    """``timeout``, shortened to what is left of the current request's deadline."""
    ends = _request_ends.get()
    if ends is None:
        return timeout
    left = ends - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the request's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _BoundedStream(httpcore.NetworkStream):
    """Every read and write waits at most until the request's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _clamp(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _clamp(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _BoundedStream(self._stream.start_tls(ssl_context, server_hostname, _clamp(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _BoundedBackend(httpcore.NetworkBackend):
    """httpcore's socket backend, with streams that respect the request's deadline."""

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(
            host, port, _clamp(timeout), local_address, socket_options
        )
        return _BoundedStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_unix_socket(path, _clamp(timeout), socket_options)
        return _BoundedStream(stream)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _BoundedTransport(httpx.HTTPTransport):
    """httpx's transport over :class:`_BoundedBackend` (direct connections, no proxy)."""

    def __init__(self, verify: typing.Any = True) -> None:
        super().__init__(verify=verify)
        # The one place that reaches past httpx's surface: HTTPTransport takes
        # no network backend, so its pool is rebuilt with one.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify),
            network_backend=_BoundedBackend(),
        )


def _url_for_repr(url: str) -> str:
    """Scheme, host, port and path: gateways put API keys in queries and user info."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "…"
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def _fill(template: Any, values: Mapping[str, str]) -> Any:
    if isinstance(template, str):
        return string.Template(template).substitute(values)
    if isinstance(template, Mapping):
        return {str(k): _fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, values) for v in template]
    return template


class HttpSmsGateway:
    """Sends SMS with one HTTP request per message.

    Args:
        url: the gateway endpoint (HTTPS in production).
        body: the request template (see the module docstring).
        encoding: ``"json"`` or ``"form"``.
        sender: the sender id or short number.
        auth_header: ``(name, value)`` of the authentication header; the
            value is a :class:`~macnss_auth.secret.Secret`.
        headers: further fixed headers.
        message_id_field: the key of the gateway's message id in a JSON answer.
        timeout: seconds for connect, read and write.
        deadline: seconds one attempt may take in all, however the gateway
            paces its answer.
        client: an ``httpx.Client`` to reuse (connection pooling, proxies,
            a test transport); one is created otherwise, which connects
            directly (it does not read proxy settings from the environment).
            Build yours with ``transport=HttpSmsGateway.bounded_transport()``
            to keep the overall deadline.
    """

    kind: ClassVar[ChannelKind] = ChannelKind.SMS
    name: ClassVar[str] = "http-sms"

    def __init__(
        self,
        url: str,
        *,
        body: Mapping[str, Any],
        encoding: str = "json",
        sender: str = "",
        auth_header: tuple[str, Secret] | None = None,
        headers: Mapping[str, str] | None = None,
        message_id_field: str | None = None,
        timeout: float = 10.0,
        deadline: float = 30.0,
        client: httpx.Client | None = None,
    ) -> None:
        if not timeout > 0 or not deadline > 0:
            raise ConfigurationError("timeout and deadline must be positive")
        if encoding not in ("json", "form"):
            raise ConfigurationError("encoding must be 'json' or 'form'")
        try:
            _fill(body, dict.fromkeys(("to", "text", "sender", "segments", "encoding"), ""))
        except (KeyError, ValueError) as exc:
            raise ConfigurationError(f"bad SMS gateway template: {exc}") from None
        self.url = url
        self._body = body
        self.encoding = encoding
        self.sender = sender
        self._auth_header = auth_header
        self._headers = dict(headers or {})
        self.message_id_field = message_id_field
        self.timeout = timeout
        self.deadline = deadline
        self._client = client or httpx.Client(timeout=timeout, transport=self.bounded_transport())
        self._owns_client = client is None

    def __repr__(self) -> str:
        return f"HttpSmsGateway({_url_for_repr(self.url)!r}, encoding={self.encoding!r})"

    @staticmethod
    def bounded_transport(verify: ssl.SSLContext | bool = True) -> httpx.BaseTransport:
        """An httpx transport on which the gateway's overall deadline holds.

        Args:
            verify: TLS verification, as for ``httpx.HTTPTransport``.
        """
        return _BoundedTransport(verify=verify)

    def close(self) -> None:
        """Close the HTTP client if this gateway created it."""
        if self._owns_client:
            self._client.close()

    def send(self, message: OutboundMessage) -> DeliveryReceipt:
        """Post ``message`` to the gateway.

        Raises:
            DeliveryTimeout: no answer within ``timeout``.
            DeliveryUnavailable: connection failure, 408/425/429 or 5xx.
            DeliveryRejected: any other non-2xx status, or a request that
                cannot be encoded (a non-ASCII header value).
        """
        length = sms_length(message.text)
        values = {
            "to": message.to,
            "text": message.text,
            "sender": self.sender,
            "segments": str(length.segments),
            "encoding": length.encoding.value,
        }
        payload = _fill(self._body, values)
        headers = dict(self._headers)
        if self._auth_header is not None:
            name, secret = self._auth_header
            headers[name] = secret.reveal().decode("utf-8")
        seconds = attempt_seconds(self.deadline)
        token = _request_ends.set(time.monotonic() + seconds)
        try:
            if self.encoding == "json":
                response = self._client.post(
                    self.url, json=payload, headers=headers, timeout=min(self.timeout, seconds)
                )
            else:
                response = self._client.post(
                    self.url, data=payload, headers=headers, timeout=min(self.timeout, seconds)
                )
        except httpx.TimeoutException as exc:
            raise DeliveryTimeout(
                f"the SMS gateway did not answer within {min(self.timeout, seconds):.3g} s"
            ) from exc
        except httpx.HTTPError as exc:
            raise DeliveryUnavailable(
                f"cannot reach the SMS gateway: {type(exc).__name__}"
            ) from exc
        except (ValueError, TypeError) as exc:
            # A header or body httpx cannot encode: retrying will not help.
            raise DeliveryRejected(f"the request cannot be built: {type(exc).__name__}") from exc
        finally:
            _request_ends.reset(token)
        status = response.status_code
        if status in _RETRYABLE_STATUS or status >= 500:
            raise DeliveryUnavailable(f"the SMS gateway answered {status}, try later")
        if not 200 <= status < 300:
            raise DeliveryRejected(f"the SMS gateway refused the message ({status})", status=status)
        return DeliveryReceipt(
            channel=self.name, message_id=self._message_id(response), segments=length.segments
        )

    def _message_id(self, response: httpx.Response) -> str | None:
        if self.message_id_field is None:
            return None
        try:
            value = response.json()
        except (ValueError, RecursionError):  # a gateway's reply nested past the limit
            return None
        if isinstance(value, Mapping) and value.get(self.message_id_field) is not None:
            return str(value[self.message_id_field])
        return None

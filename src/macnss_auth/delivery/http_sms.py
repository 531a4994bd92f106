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

Status mapping: 2xx is success; 408, 425, 429 and 5xx are retryable; any
other 4xx is a rejection. Timeouts and connection failures are retryable.
"""

from __future__ import annotations

import string
import urllib.parse
from collections.abc import Mapping
from typing import Any

import httpx

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
        client: an ``httpx.Client`` to reuse (connection pooling, proxies,
            a test transport); one is created otherwise.
    """

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
        client: httpx.Client | None = None,
    ) -> None:
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
        self._client = client or httpx.Client(timeout=timeout)
        self._owns_client = client is None

    @property
    def kind(self) -> ChannelKind:
        return ChannelKind.SMS

    @property
    def name(self) -> str:
        return "http-sms"

    def __repr__(self) -> str:
        return f"HttpSmsGateway({_url_for_repr(self.url)!r}, encoding={self.encoding!r})"

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
        try:
            if self.encoding == "json":
                response = self._client.post(
                    self.url, json=payload, headers=headers, timeout=self.timeout
                )
            else:
                response = self._client.post(
                    self.url, data=payload, headers=headers, timeout=self.timeout
                )
        except httpx.TimeoutException as exc:
            raise DeliveryTimeout(
                f"the SMS gateway did not answer within {self.timeout} s"
            ) from exc
        except httpx.HTTPError as exc:
            raise DeliveryUnavailable(
                f"cannot reach the SMS gateway: {type(exc).__name__}"
            ) from exc
        except (ValueError, TypeError) as exc:
            # A header or body httpx cannot encode: retrying will not help.
            raise DeliveryRejected(f"the request cannot be built: {type(exc).__name__}") from exc
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
        except ValueError:
            return None
        if isinstance(value, Mapping) and value.get(self.message_id_field) is not None:
            return str(value[self.message_id_field])
        return None

"""Delivery of one-time codes: the channel protocol, channels and message templates.

Channels: :class:`SmtpChannel` (e-mail), :class:`HttpSmsGateway` (SMS over
HTTP), :class:`~macnss_auth.delivery.smpp.SmppChannel` (SMS over SMPP; needs
the ``smpp`` extra, imported on first use), :class:`ConsoleChannel` and
:class:`FileChannel` (development), :class:`CapturingChannel` (tests).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from macnss_auth.delivery import base as _base
from macnss_auth.delivery.base import *  # noqa: F403 (the delivery contract, listed once: base.__all__)
from macnss_auth.delivery.capture import CapturingChannel, find_code
from macnss_auth.delivery.console import ConsoleChannel, FileChannel
from macnss_auth.delivery.http_sms import HttpSmsGateway
from macnss_auth.delivery.segments import SmsEncoding, SmsLength, sms_length
from macnss_auth.delivery.smtp import SmtpChannel
from macnss_auth.delivery.templates import (
    LANGUAGES,
    RenderedMessage,
    failure_message,
    render_code_message,
)

if TYPE_CHECKING:
    from macnss_auth.delivery.smpp import SmppChannel

__all__ = [
    "LANGUAGES",
    "CapturingChannel",
    "ConsoleChannel",
    "FileChannel",
    "HttpSmsGateway",
    "RenderedMessage",
    "SmppChannel",
    "SmsEncoding",
    "SmsLength",
    "SmtpChannel",
    "failure_message",
    "find_code",
    "render_code_message",
    "sms_length",
]
__all__ += _base.__all__


def __getattr__(name: str) -> Any:
    # smpplib is an optional dependency: import it only when SMPP is asked for.
    if name == "SmppChannel":
        from macnss_auth.delivery.smpp import SmppChannel  # noqa: PLC0415 (optional dependency)

        return SmppChannel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Fault injection: how a tap goes wrong, for testing readers against bad links.

A :class:`FaultPlan` is a frozen description ("drop every 3rd response",
"card removed after 5 commands"); a :class:`FaultInjector` applies it to one
card, counting commands. The three serving paths
(:mod:`macnss_auth.nfc.serve`) consult the same injector, each in its own
terms: in process a dropped frame is a :class:`~macnss_auth.errors.TransportError`;
over nfcpy ``udp`` the card keeps silent and nfcpy's ISO-DEP retry logic
(R(NAK), retransmission) takes over; over vpcd a removed card is a
disconnected reader slot.

Faults are counted per command APDU, 1-based: ``drop_every=3`` drops the
answers to commands 3, 6, 9...; ``remove_after=5`` answers commands 1..5 and
then the card is gone for good (until :meth:`FaultInjector.reinsert`).
"""

from __future__ import annotations

import threading

import attrs

from macnss_auth.errors import ConfigurationError

__all__ = ["FaultInjector", "FaultPlan", "FrameFault"]


def _positive_or_none(
    _instance: object, attribute: attrs.Attribute[int | None], value: object
) -> None:
    if value is not None and (not isinstance(value, int) or value < 1):
        raise ConfigurationError(f"{attribute.name} must be a positive integer or None")


@attrs.frozen
class FaultPlan:
    """What goes wrong during a tap.

    Attributes:
        delay: seconds the card "computes" before each answer. Over nfcpy the card
            covers the delay with WTX requests when ``wtx_on_delay`` is true (as a
            slow real chip does) and otherwise lets the reader time out.
        wtx_on_delay: whether delays are announced with S(WTX) (nfcpy path only).
        wtx_storm: extra S(WTX) requests the card sends before every answer (nfcpy path).
        drop_every: drop the answer to every N-th command.
        corrupt_every: flip one bit in the data of every N-th answer.
        wrong_mac_every: corrupt the secure-messaging MAC (DO8E) of every N-th answer.
        remove_after: the card leaves the field after answering N commands.
    """

    delay: float = 0.0
    wtx_on_delay: bool = True
    wtx_storm: int = 0
    drop_every: int | None = attrs.field(default=None, validator=_positive_or_none)
    corrupt_every: int | None = attrs.field(default=None, validator=_positive_or_none)
    wrong_mac_every: int | None = attrs.field(default=None, validator=_positive_or_none)
    remove_after: int | None = attrs.field(default=None, validator=_positive_or_none)

    def __attrs_post_init__(self) -> None:
        if self.delay < 0 or self.wtx_storm < 0:
            raise ConfigurationError("delay and wtx_storm must not be negative")

    @property
    def none(self) -> bool:
        """Whether this plan injects nothing."""
        return self == FaultPlan()


class FrameFault(Exception):
    """Internal signal from :meth:`FaultInjector.answer`: the answer is lost.

    Attributes:
        removed: the card left the field (rather than one lost frame).
    """

    def __init__(self, *, removed: bool) -> None:
        super().__init__("card removed" if removed else "frame dropped")
        self.removed = removed


class FaultInjector:
    """Applies a :class:`FaultPlan` to the answers of one card; thread-safe."""

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self.plan = plan if plan is not None else FaultPlan()
        self._lock = threading.Lock()
        self._commands = 0
        self._removed = False

    def __repr__(self) -> str:
        return f"FaultInjector({self.plan!r}, commands={self._commands})"

    @property
    def commands(self) -> int:
        """Commands seen so far."""
        return self._commands

    @property
    def removed(self) -> bool:
        """Whether the card has left the field."""
        return self._removed

    def reinsert(self) -> None:
        """Put the card back (the command counter restarts)."""
        with self._lock:
            self._commands = 0
            self._removed = False

    def admit(self) -> int:
        """Count one incoming command; return its 1-based number.

        Raises:
            FrameFault: the card is no longer in the field (``removed=True``).
        """
        with self._lock:
            if self._removed:
                raise FrameFault(removed=True)
            limit = self.plan.remove_after
            if limit is not None and self._commands >= limit:
                self._removed = True
                raise FrameFault(removed=True)
            self._commands += 1
            return self._commands

    def answer(self, number: int, response: bytes) -> bytes:
        """The answer to command ``number`` as the faulty link delivers it.

        Raises:
            FrameFault: the answer is dropped (``removed=False``).
        """
        plan = self.plan
        if plan.drop_every is not None and number % plan.drop_every == 0:
            raise FrameFault(removed=False)
        out = bytearray(response)
        if plan.corrupt_every is not None and number % plan.corrupt_every == 0 and len(out) > 2:
            out[0] ^= 0x01
        if (
            plan.wrong_mac_every is not None
            and number % plan.wrong_mac_every == 0
            and len(out) >= 12
            and out[-12:-10] == b"\x8e\x08"
        ):
            out[-3] ^= 0xFF
        return bytes(out)

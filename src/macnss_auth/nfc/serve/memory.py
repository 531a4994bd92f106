"""In-process transport: the reader's commands go straight to a :class:`VirtualCard`.

:class:`MemoryTransport` satisfies :class:`macnss_auth.nfc.protocol.Transport`
(``transceive(command: bytes) -> bytes``). Faults from a
:class:`~macnss_auth.nfc.card.faults.FaultPlan` become typed errors at once,
never a hang: a dropped answer or a delay longer than ``timeout`` raises
:class:`~macnss_auth.nfc.serve.errors.LinkTimeoutError`, a removed card
:class:`~macnss_auth.nfc.serve.errors.CardRemovedError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from macnss_auth.nfc.card.chip import VirtualCard
from macnss_auth.nfc.card.faults import FaultInjector, FaultPlan, FrameFault
from macnss_auth.nfc.serve.errors import CardRemovedError, LinkTimeoutError

__all__ = ["MemoryTransport"]


class MemoryTransport:
    """A transport to a card in the same process.

    Args:
        card: the card to talk to.
        faults: a plan (or a shared injector) of faults to inject.
        timeout: the longest the "reader" waits for an answer, in seconds.
        sleep: how delays are spent (``time.sleep``; tests may pass a fake).
        record: keep a transcript of every exchange in :attr:`transcript`.
    """

    def __init__(
        self,
        card: VirtualCard,
        *,
        faults: FaultPlan | FaultInjector | None = None,
        timeout: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        record: bool = False,
    ) -> None:
        self.card = card
        self.faults = faults if isinstance(faults, FaultInjector) else FaultInjector(faults)
        self.timeout = timeout
        self._sleep = sleep
        self._record = record
        self.transcript: list[tuple[bytes, bytes]] = []
        card.reset()

    def __repr__(self) -> str:
        return f"MemoryTransport({self.card!r})"

    def tap(self) -> None:
        """Take the card away and present it again: a fresh power-on, no session."""
        self.faults.reinsert()
        self.card.reset()

    def transceive(self, command: bytes) -> bytes:
        """Send one command APDU; return the response APDU.

        Raises:
            CardRemovedError: the fault plan removed the card.
            LinkTimeoutError: the answer was dropped or came later than ``timeout``.
        """
        if type(command) is not bytes:
            raise TypeError("command must be bytes")
        try:
            number = self.faults.admit()
        except FrameFault:
            raise CardRemovedError from None
        response = self.card.process(command)
        delay = self.faults.plan.delay
        if delay:
            self._sleep(min(delay, self.timeout))
            if delay > self.timeout:
                raise LinkTimeoutError
        try:
            answer = self.faults.answer(number, response)
        except FrameFault:
            raise LinkTimeoutError from None
        if self._record:
            self.transcript.append((command, answer))
        return answer

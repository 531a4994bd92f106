"""The shared shape of every card protocol: a small state machine over bytes.

Theory of operation (the sans-I/O pattern of h11/h2): a protocol object never
talks to a reader. The caller asks it for the next command, sends those bytes
however it likes, and hands the response bytes back::

    while not protocol.finished:
        command = protocol.next_command()        # bytes to send
        protocol.receive_response(transport.transceive(command))
    result = protocol.result                     # only once finished

:func:`run` is that loop; it is the one place in the library where a protocol
meets a :class:`Transport`.

A protocol subclasses :class:`ProtocolMachine` and declares its transitions
as data: ``TRANSITIONS`` maps ``(state, event)`` to the set of states the
handler may move to. ``event`` is :attr:`Event.COMMAND` (``next_command``) or
:attr:`Event.RESPONSE` (``receive_response``). The base class checks every
call against the table. Anything the table does not allow -- a call out of
order, a handler returning an unlisted state, a malformed or refused response,
a bug that raises -- moves the object to its FAILED state and calls
:meth:`ProtocolMachine._drop_secrets`; from then on every call raises
:class:`~macnss_auth.errors.LocalProtocolError`. A failed protocol object is
never reused: start a new one (and, on a card, usually a new session).

Writing a protocol::

    class Ping(ProtocolMachine[PingState, bytes]):
        FAILED = PingState.FAILED
        DONE = PingState.DONE
        TRANSITIONS = {
            (PingState.START, Event.COMMAND): {PingState.SENT},
            (PingState.SENT, Event.RESPONSE): {PingState.DONE},
        }

        def _command(self, state: PingState) -> tuple[bytes, PingState]:
            return b"\\x00\\xca\\x00\\x00\\x00", PingState.SENT

        def _response(self, state: PingState, response: bytes) -> PingState:
            self._set_result(response)
            return PingState.DONE
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Set
from typing import ClassVar, Generic, Protocol, TypeVar, runtime_checkable

from macnss_auth.errors import LocalProtocolError

__all__ = [
    "Event",
    "Exchange",
    "ProtocolMachine",
    "Transport",
    "run",
]

S = TypeVar("S", bound=enum.Enum)
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

#: Upper bound on round trips in :func:`run`, so a broken protocol cannot loop forever.
MAX_ROUND_TRIPS = 10_000


class Event(enum.Enum):
    """What the caller asked a protocol object to do."""

    COMMAND = "next_command"
    RESPONSE = "receive_response"


@runtime_checkable
class Transport(Protocol):
    """Anything that sends a command APDU's bytes to a card and returns the response bytes."""

    def transceive(self, command: bytes) -> bytes:
        """Send ``command`` and return the full response (data and status word)."""
        ...


@runtime_checkable
class Exchange(Protocol[R_co]):
    """What :func:`run` needs from a protocol object."""

    @property
    def finished(self) -> bool:
        """Whether the result is available."""
        ...

    @property
    def result(self) -> R_co:
        """The outcome; only once finished."""
        ...

    def next_command(self) -> bytes:
        """The next command to send."""
        ...

    def receive_response(self, response: bytes) -> None:
        """Feed the card's answer to the last command."""
        ...

    def abort(self) -> None:
        """Give up: move to FAILED and drop secrets."""
        ...


class ProtocolMachine(Generic[S, R]):
    """Base of the protocol state machines; see the module docstring.

    Subclasses set ``TRANSITIONS``, ``FAILED`` and ``DONE`` and implement
    :meth:`_command` and :meth:`_response`; they call :meth:`_set_result`
    before moving to ``DONE`` and override :meth:`_drop_secrets` to forget keys.
    """

    TRANSITIONS: ClassVar[Mapping[tuple[enum.Enum, Event], Set[enum.Enum]]]
    FAILED: ClassVar[enum.Enum]
    DONE: ClassVar[enum.Enum]

    def __init__(self, initial: S) -> None:
        self._state: S = initial
        self._result: R | None = None
        self._has_result = False

    # -- public surface -------------------------------------------------------

    @property
    def state(self) -> S:
        """The current state."""
        return self._state

    @property
    def finished(self) -> bool:
        """Whether the protocol completed successfully."""
        return self._state is self.DONE

    @property
    def failed(self) -> bool:
        """Whether the protocol is dead."""
        return self._state is self.FAILED

    @property
    def result(self) -> R:
        """The outcome of a finished protocol.

        Raises:
            LocalProtocolError: the protocol has not finished (or failed).
        """
        if not self.finished or not self._has_result:
            raise LocalProtocolError(f"{type(self).__name__} has no result in state {self._state}")
        return self._result  # type: ignore[return-value]  # set together with _has_result

    @property
    def expects(self) -> Event | None:
        """Which call the table allows now, or ``None`` when finished or failed."""
        for state, event in self.TRANSITIONS:
            if state is self._state:
                return event
        return None

    def next_command(self) -> bytes:
        """The bytes of the next command APDU to send.

        Raises:
            LocalProtocolError: the table allows no command now (the object is then dead).
        """
        targets = self._allowed(Event.COMMAND)
        ok = False
        try:
            command, new_state = self._command(self._state)
            self._move(new_state, targets)
            ok = True
        finally:
            if not ok:
                self._fail()
        return command

    def receive_response(self, response: bytes) -> None:
        """Feed the response to the last command.

        Raises:
            LocalProtocolError: no response was expected (the object is then dead).
            MacnssAuthError: whatever the protocol raises for a bad or refused
                response (the object is then dead).
        """
        targets = self._allowed(Event.RESPONSE)
        ok = False
        try:
            if type(response) is not bytes:
                raise TypeError("response must be bytes")
            new_state = self._response(self._state, response)
            self._move(new_state, targets)
            ok = True
        finally:
            if not ok:
                self._fail()

    def abort(self) -> None:
        """Move to FAILED and drop secrets (e.g. the transport broke). Idempotent."""
        self._fail()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} state={self._state.name}>"

    # -- for subclasses -----------------------------------------------------------

    def _command(self, state: S) -> tuple[bytes, S]:
        """Build the command for ``state``; return it with the state to move to."""
        raise NotImplementedError

    def _response(self, state: S, response: bytes) -> S:
        """Handle a response in ``state``; return the state to move to, or raise."""
        raise NotImplementedError

    def _drop_secrets(self) -> None:
        """Forget every key and nonce (Python cannot wipe memory; drop references)."""

    def _set_result(self, result: R) -> None:
        self._result = result
        self._has_result = True

    # -- machinery ---------------------------------------------------------------

    def _allowed(self, event: Event) -> Set[enum.Enum]:
        if self._state is self.FAILED:
            raise LocalProtocolError(f"{type(self).__name__} has failed; start a new one")
        targets = self.TRANSITIONS.get((self._state, event))
        if targets is None:
            state = self._state
            self._fail()
            raise LocalProtocolError(f"{event.value}() is not allowed in state {state.name}")
        return targets

    def _move(self, new_state: S, targets: Set[enum.Enum]) -> None:
        if new_state not in targets:
            raise LocalProtocolError(
                f"transition {self._state.name} -> {new_state.name} is not in the table"
            )
        self._state = new_state

    def _fail(self) -> None:
        self._state = self.FAILED  # type: ignore[assignment]  # FAILED is a member of S
        self._result = None
        self._has_result = False
        self._drop_secrets()


def run(protocol: Exchange[R], transport: Transport) -> R:
    """Drive ``protocol`` over ``transport`` until it finishes; return its result.

    If the transport raises, the protocol is aborted (keys dropped) and the
    error propagates unchanged.

    Raises:
        LocalProtocolError: the protocol was already used up, or never finishes.
        MacnssAuthError: whatever the protocol or the transport raises.
    """
    for _ in range(MAX_ROUND_TRIPS):
        if protocol.finished:
            return protocol.result
        command = protocol.next_command()
        try:
            response = transport.transceive(command)
        except BaseException:
            protocol.abort()
            raise
        protocol.receive_response(response)
    protocol.abort()
    raise LocalProtocolError("protocol did not finish within the round-trip limit")

"""The state-machine base: the table decides, and any violation kills the object."""

from __future__ import annotations

import enum

import pytest

from macnss_auth.errors import LocalProtocolError, MalformedInput, TransportError
from macnss_auth.nfc.protocol import Event, ProtocolMachine, Transport, run


class PingState(enum.Enum):
    START = "start"
    SENT = "sent"
    DONE = "done"
    FAILED = "failed"


class Ping(ProtocolMachine[PingState, bytes]):
    """Sends one command; the response must end in 9000."""

    FAILED = PingState.FAILED
    DONE = PingState.DONE
    TRANSITIONS = {  # noqa: RUF012 (a table, read only)
        (PingState.START, Event.COMMAND): {PingState.SENT},
        (PingState.SENT, Event.RESPONSE): {PingState.DONE},
    }

    def __init__(self, *, wrong_target: bool = False) -> None:
        super().__init__(PingState.START)
        self.key: bytes | None = b"k" * 16
        self._wrong_target = wrong_target

    def _command(self, state: PingState) -> tuple[bytes, PingState]:
        if self._wrong_target:
            return b"\x00", PingState.DONE
        return b"\x00\xca\x00\x00\x00", PingState.SENT

    def _response(self, state: PingState, response: bytes) -> PingState:
        if response[-2:] != b"\x90\x00":
            raise MalformedInput("no 9000")
        self._set_result(response[:-2])
        return PingState.DONE

    def _drop_secrets(self) -> None:
        self.key = None


class Echo:
    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.sent: list[bytes] = []

    def transceive(self, command: bytes) -> bytes:
        self.sent.append(command)
        return self.answer


class Broken:
    def transceive(self, command: bytes) -> bytes:
        raise TransportError("card removed")


def test_run_loop_and_result() -> None:
    ping = Ping()
    assert ping.expects is Event.COMMAND
    transport = Echo(b"ab\x90\x00")
    assert isinstance(transport, Transport)
    assert run(ping, transport) == b"ab"
    assert ping.finished
    assert ping.state is PingState.DONE
    assert ping.expects is None
    assert transport.sent == [b"\x00\xca\x00\x00\x00"]


def test_result_before_finish_is_an_error() -> None:
    with pytest.raises(LocalProtocolError):
        _ = Ping().result


def assert_dead(ping: Ping) -> None:
    assert ping.failed
    assert ping.key is None
    with pytest.raises(LocalProtocolError):
        ping.next_command()
    with pytest.raises(LocalProtocolError):
        ping.receive_response(b"\x90\x00")
    with pytest.raises(LocalProtocolError):
        _ = ping.result


def test_out_of_order_call_kills() -> None:
    ping = Ping()
    with pytest.raises(LocalProtocolError):
        ping.receive_response(b"\x90\x00")
    assert_dead(ping)


def test_double_command_kills() -> None:
    ping = Ping()
    ping.next_command()
    with pytest.raises(LocalProtocolError):
        ping.next_command()
    assert_dead(ping)


def test_bad_response_kills() -> None:
    ping = Ping()
    ping.next_command()
    with pytest.raises(MalformedInput):
        ping.receive_response(b"\x6a\x82")
    assert_dead(ping)


def test_non_bytes_response_kills() -> None:
    ping = Ping()
    ping.next_command()
    with pytest.raises(TypeError):
        ping.receive_response(bytearray(b"\x90\x00"))  # type: ignore[arg-type]
    assert_dead(ping)


def test_transition_outside_table_kills() -> None:
    ping = Ping(wrong_target=True)
    with pytest.raises(LocalProtocolError, match="not in the table"):
        ping.next_command()
    assert_dead(ping)


def test_transport_failure_aborts() -> None:
    ping = Ping()
    with pytest.raises(TransportError):
        run(ping, Broken())
    assert_dead(ping)


def test_finished_protocol_refuses_more_work() -> None:
    ping = Ping()
    run(ping, Echo(b"\x90\x00"))
    with pytest.raises(LocalProtocolError):
        ping.next_command()
    assert_dead(ping)
    assert "FAILED" in repr(ping)

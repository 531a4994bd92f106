"""ReadFile, SelectApplication, SelectMasterFile: fed answers by hand, no card.

Each test plays the chip: it reads the command the machine emits and hands
back the answer it wants the machine to cope with -- honest, refusing,
lying about lengths, truncated, or ending secure messaging.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from macnss_auth.errors import (
    ConfigurationError,
    LocalProtocolError,
    MacnssAuthError,
    MalformedInput,
    RemoteProtocolError,
    SecureMessagingError,
)
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU
from macnss_auth.nfc.crypto import SymmetricCipher
from macnss_auth.nfc.files import (
    EMRTD_AID,
    MIN_CHUNK,
    ReadFile,
    ReadProgress,
    ReadSessionEnded,
    ReadState,
    SelectApplication,
    SelectMasterFile,
    announced_length,
    announced_response_size,
    read_chunk_size,
    unwrap_odd_read,
)
from macnss_auth.nfc.lds.files import LdsFile
from macnss_auth.nfc.protocol import ProtocolMachine, run
from macnss_auth.nfc.sm import CardSecureChannel, SecureChannel, SessionKeys
from macnss_auth.nfc.tlv import encode_tlv

SW_OK = b"\x90\x00"


def a_file(size: int, tag: int = 0x75) -> bytes:
    """A BER-TLV file of ``size`` bytes in all (header included)."""
    for header in (2, 3, 4, 5):
        encoded = encode_tlv(tag, bytes(i % 251 for i in range(size - header)))
        if len(encoded) == size:
            return encoded
    raise AssertionError(f"no TLV of {size} bytes")


def answer(command: bytes, contents: bytes, *, selected: bool = True) -> bytes:
    """An honest plain chip: the bytes READ BINARY asks for, with 9000."""
    apdu = CommandAPDU.from_bytes(command)
    if apdu.ins == 0xA4:
        return SW_OK
    assert apdu.ne is not None
    if apdu.ins == 0xB0 and apdu.p1 & 0x80:
        offset = apdu.p2
    elif apdu.ins == 0xB0:
        assert selected
        offset = (apdu.p1 << 8) | apdu.p2
    else:
        offset = int.from_bytes(apdu.data[2:], "big")
        piece = contents[offset : offset + apdu.ne - 4]
        return encode_tlv(0x53, piece) + SW_OK
    return contents[offset : offset + apdu.ne] + SW_OK


def read_plain(machine: ReadFile, contents: bytes) -> list[CommandAPDU]:
    sent = []
    while not machine.finished:
        command = machine.next_command()
        sent.append(CommandAPDU.from_bytes(command))
        machine.receive_response(answer(command, contents))
    return sent


# -- the honest path ---------------------------------------------------------------------


def test_small_file_is_one_read_by_short_file_id() -> None:
    contents = a_file(100, tag=0x61)
    machine = ReadFile.lds(LdsFile.DG1, channel=None, chunk=256)
    assert machine.state is ReadState.READ
    first = machine.next_command()
    assert first == bytes.fromhex("00B0810000")  # P1 = 80 | SFI 1, Le = 256
    machine.receive_response(contents + SW_OK)
    assert machine.finished
    assert machine.result == contents


def test_chunks_follow_the_announced_length_with_progress() -> None:
    contents = a_file(600)
    seen: list[tuple[int, int]] = []
    machine = ReadFile.lds(
        LdsFile.DG2, channel=None, chunk=223, on_chunk=lambda d, t: seen.append((d, t))
    )
    sent = read_plain(machine, contents)
    assert machine.result == contents
    assert [(c.p1, c.p2, c.ne) for c in sent] == [(0x82, 0, 223), (0, 223, 223), (1, 190, 154)]
    assert seen == [(223, 600), (446, 600), (600, 600)]
    assert machine.progress == ReadProgress(contents, 600)
    assert machine.progress.complete


def test_padding_after_the_tlv_object_is_not_part_of_the_file() -> None:
    contents = a_file(40, tag=0x31)
    machine = ReadFile(name="CardAccess", short_file_id=0x1C, channel=None, chunk=256)
    machine.next_command()
    machine.receive_response(contents + bytes(30) + SW_OK)
    assert machine.result == contents


def test_without_a_short_file_id_the_file_is_selected_first() -> None:
    contents = a_file(300)
    machine = ReadFile(name="EF.X", file_id=0x011C, channel=None, chunk=256)
    sent = read_plain(machine, contents)
    assert sent[0].to_bytes() == bytes.fromhex("00A4020C02011C")
    assert [(c.ins, c.p1, c.p2) for c in sent[1:]] == [(0xB0, 0, 0), (0xB0, 1, 0)]
    assert machine.result == contents


def test_a_file_without_a_header_is_the_first_answer() -> None:
    atr_info = bytes.fromhex("7F66080202FFFF0202FFFF") + bytes.fromhex("4701FF")
    machine = ReadFile(
        name="ATR/INFO", short_file_id=1, channel=None, chunk=256, length_from_header=False
    )
    machine.next_command()
    machine.receive_response(atr_info + b"\x62\x82")
    assert machine.result == atr_info
    assert announced_response_size(atr_info) == 0xFFFF


def test_le_hint_caps_the_first_read_only() -> None:
    contents = a_file(500)
    machine = ReadFile.lds(LdsFile.DG2, channel=None, chunk=223, le_hint=100)
    sent = read_plain(machine, contents)
    assert [c.ne for c in sent] == [100, 223, 177]


def test_extended_chunks_use_extended_length() -> None:
    contents = a_file(5000)
    machine = ReadFile.lds(LdsFile.DG2, channel=None, chunk=4000)
    sent = read_plain(machine, contents)
    assert [c.ne for c in sent] == [4000, 1000]
    assert all(c.is_extended for c in sent)
    assert machine.result == contents


# -- resuming and the odd INS ------------------------------------------------------------


def test_resume_selects_by_file_id_and_goes_on_at_the_offset() -> None:
    contents = a_file(1000)
    machine = ReadFile.lds(LdsFile.DG2, channel=None, chunk=223)
    machine.next_command()
    machine.receive_response(contents[:223] + SW_OK)
    machine.next_command()
    machine.abort()  # the card left the field
    kept = machine.progress
    assert kept == ReadProgress(contents[:223], 1000)

    again = ReadFile.lds(LdsFile.DG2, channel=None, chunk=223, resume=kept)
    assert again.state is ReadState.SELECT
    sent = read_plain(again, contents)
    assert sent[0].to_bytes() == bytes.fromhex("00A4020C020102")
    assert (sent[1].p1 << 8) | sent[1].p2 == 223
    assert again.result == contents


def test_offsets_past_32767_use_odd_ins_and_do53() -> None:
    contents = a_file(40_000)
    start = ReadProgress(contents[:32_768], len(contents))
    machine = ReadFile.lds(LdsFile.DG2, channel=None, chunk=223, resume=start)
    sent = read_plain(machine, contents)
    odd = sent[1]
    assert odd.ins == 0xB1
    assert odd.data == bytes.fromhex("54028000")
    assert odd.ne == 223 + 4
    assert machine.result == contents


@pytest.mark.parametrize(
    "wrapped",
    [
        encode_tlv(0x54, b"abc"),  # another tag
        encode_tlv(0x53, b"abc") + b"\x00",  # trailing byte
        encode_tlv(0x53, b"ab") + encode_tlv(0x53, b"c"),  # two objects
        bytes.fromhex("5305616263"),  # length past the end
        bytes.fromhex("5380"),  # indefinite length
    ],
)
def test_do53_is_strict(wrapped: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="DO'53'"):
        unwrap_odd_read(wrapped)


def test_do53_unwraps_exactly_its_value() -> None:
    assert unwrap_odd_read(encode_tlv(0x53, b"abc")) == b"abc"
    assert unwrap_odd_read(encode_tlv(0x53, b"")) == b""


def test_odd_read_answer_with_garbage_after_do53_fails_the_read() -> None:
    contents = a_file(40_000)
    start = ReadProgress(contents[:32_768], len(contents))
    machine = ReadFile.lds(LdsFile.DG2, channel=None, chunk=223, resume=start)
    machine.next_command()
    machine.receive_response(SW_OK)  # SELECT
    machine.next_command()
    with pytest.raises(RemoteProtocolError, match="DO'53'"):
        machine.receive_response(encode_tlv(0x53, contents[32_768:32_800]) + b"\x99" + SW_OK)
    assert machine.failed
    assert len(machine.progress.data) == 32_768


# -- the chip's rules: 6Cxx, 6700, 6282 ----------------------------------------------------


def test_6cxx_asks_again_with_exactly_xx() -> None:
    contents = a_file(200)
    machine = ReadFile.lds(LdsFile.DG11, channel=None, chunk=223)
    machine.next_command()
    machine.receive_response(b"\x6c\xc8")  # 200
    retry = CommandAPDU.from_bytes(machine.next_command())
    assert (retry.p1, retry.p2, retry.ne) == (0x8B, 0, 200)
    machine.receive_response(contents + SW_OK)
    assert machine.result == contents
    assert machine.chunk == 223  # an exact Le is not a smaller chunk


def test_6700_halves_the_chunk_and_remembers_it() -> None:
    contents = a_file(300)
    machine = ReadFile.lds(LdsFile.DG2, channel=None, chunk=223)
    machine.next_command()
    machine.receive_response(b"\x67\x00")
    retry = CommandAPDU.from_bytes(machine.next_command())
    assert retry.ne == 111
    machine.receive_response(contents[:111] + SW_OK)
    rest = read_plain(machine, contents)
    assert machine.chunk == 111
    assert [c.ne for c in rest] == [111, 78]
    assert machine.result == contents


def refuse_until_failure(machine: ReadFile, refusal: Callable[[int], bytes]) -> RemoteProtocolError:
    """Answer every READ BINARY with ``refusal(ne)``; the error the machine ends with."""
    for _ in range(100):
        command = CommandAPDU.from_bytes(machine.next_command())
        assert command.ne is not None
        try:
            machine.receive_response(refusal(command.ne))
        except RemoteProtocolError as exc:
            assert machine.failed
            return exc
    raise AssertionError("the machine never gave up")


def test_a_chip_that_refuses_every_size_fails_with_the_status_word() -> None:
    machine = ReadFile.lds(LdsFile.DG2, channel=None, chunk=223)
    error = refuse_until_failure(machine, lambda ne: b"\x67\x00")
    assert "every read size" in str(error)
    assert error.status_word == 0x6700
    assert machine.chunk == MIN_CHUNK


def test_6cxx_loop_is_bounded() -> None:
    machine = ReadFile.lds(LdsFile.DG2, channel=None, chunk=223)
    error = refuse_until_failure(machine, lambda ne: bytes([0x6C, ne - 1]))
    assert "every read size" in str(error)


def test_short_answers_with_6282_are_read_on() -> None:
    contents = a_file(400)
    machine = ReadFile.lds(LdsFile.DG2, channel=None, chunk=223)
    while not machine.finished:
        command = CommandAPDU.from_bytes(machine.next_command())
        honest = answer(command.to_bytes(), contents)[:-2]
        machine.receive_response(honest[:160] + b"\x62\x82")
    assert machine.result == contents


# -- hostile answers ---------------------------------------------------------------------


def test_a_header_announcing_too_much_is_refused() -> None:
    machine = ReadFile.lds(LdsFile.DG2, channel=None, chunk=223, max_length=1000)
    machine.next_command()
    with pytest.raises(RemoteProtocolError, match="announces 70005 bytes"):
        machine.receive_response(bytes.fromhex("7583011170") + bytes(218) + SW_OK)


def test_a_header_that_lies_ends_in_a_typed_error_with_the_progress_kept() -> None:
    # The header announces 600 bytes; the chip has only 300 and then answers empty.
    contents = a_file(600)[:300]
    machine = ReadFile.lds(LdsFile.DG2, channel=None, chunk=223)
    machine.next_command()
    machine.receive_response(contents[:223] + SW_OK)
    machine.next_command()
    machine.receive_response(contents[223:] + b"\x62\x82")
    machine.next_command()
    with pytest.raises(RemoteProtocolError, match="ended before its announced length"):
        machine.receive_response(b"\x62\x82")
    assert machine.progress == ReadProgress(contents, 600)


def test_an_answer_longer_than_its_le_is_refused() -> None:
    contents = a_file(600)
    machine = ReadFile.lds(LdsFile.DG2, channel=None, chunk=223)
    machine.next_command()
    with pytest.raises(RemoteProtocolError, match="answer to a READ BINARY of 223"):
        machine.receive_response(contents[:224] + SW_OK)


@pytest.mark.parametrize(
    ("first", "error"),
    [
        (b"\x75" + SW_OK, RemoteProtocolError),  # no length at all
        (b"" + SW_OK, RemoteProtocolError),
        (b"\x7f" + SW_OK, RemoteProtocolError),  # two-byte tag, cut
        (b"\x7f\x61" + SW_OK, RemoteProtocolError),
        (bytes.fromhex("7584FFFFFFFF00") + SW_OK, MalformedInput),  # four length bytes
        (bytes.fromhex("7580") + SW_OK, MalformedInput),  # indefinite
        (bytes.fromhex("758201") + SW_OK, MalformedInput),  # length cut
    ],
)
def test_unusable_headers_are_typed_errors(first: bytes, error: type[Exception]) -> None:
    machine = ReadFile.lds(LdsFile.DG2, channel=None, chunk=223)
    machine.next_command()
    with pytest.raises(error):
        machine.receive_response(first)


@pytest.mark.parametrize("word", [0x6A82, 0x6982, 0x6B00, 0x6D00, 0x6F00, 0x9001, 0x6100])
def test_a_refusal_carries_its_status_word(word: int) -> None:
    machine = ReadFile.lds(LdsFile.DG3, channel=None, chunk=223)
    machine.next_command()
    with pytest.raises(RemoteProtocolError) as caught:
        machine.receive_response(word.to_bytes(2, "big"))
    assert caught.value.status_word == word
    assert "DG3" in str(caught.value)


def test_a_refused_select_when_resuming() -> None:
    start = ReadProgress(a_file(600)[:223], 600)
    machine = ReadFile.lds(LdsFile.DG2, channel=None, chunk=223, resume=start)
    machine.next_command()
    with pytest.raises(RemoteProtocolError, match="SELECT DG2") as caught:
        machine.receive_response(b"\x6a\x82")
    assert caught.value.status_word == 0x6A82


def test_multi_byte_tags_and_long_lengths() -> None:
    assert announced_length(bytes.fromhex("7F6103")) == 6
    assert announced_length(bytes.fromhex("5F8F0101")) == 5  # three-byte tag
    assert announced_length(bytes.fromhex("7581FF")) == 3 + 255
    assert announced_length(bytes.fromhex("75830100 00")) == 5 + 65536


_STATUS = st.sampled_from(
    [0x9000, 0x6282, 0x6700, 0x6C00, 0x6C10, 0x6CFF, 0x6A82, 0x6B00, 0x6982, 0x6100, 0x6300]
)


@settings(max_examples=300, deadline=None)
@given(
    size=st.integers(min_value=2, max_value=2000),
    plan=st.lists(st.tuples(st.booleans(), _STATUS, st.integers(0, 300)), max_size=40),
)
def test_status_words_in_any_order_give_the_file_or_a_library_error(
    size: int, plan: list[tuple[bool, int, int]]
) -> None:
    """Answers honest or not, in any order: the result is the file exactly, or a typed error."""
    contents = encode_tlv(0x75, bytes(i % 251 for i in range(size)))
    machine = ReadFile.lds(LdsFile.DG2, channel=None, chunk=223, max_length=4000)
    steps = iter(plan)
    try:
        while not machine.finished:
            command = machine.next_command()
            honest, word, cut = next(steps, (True, 0x9000, 0))
            data = answer(command, contents)[:-2]
            if not honest:
                data = data[:cut]
            machine.receive_response(data + word.to_bytes(2, "big"))
    except MacnssAuthError:
        assert machine.failed
        assert contents.startswith(machine.progress.data)
        with pytest.raises(LocalProtocolError):
            machine.next_command()
        return
    assert machine.result == contents


@settings(max_examples=200, deadline=None)
@given(answers=st.lists(st.binary(max_size=300), min_size=1, max_size=6))
def test_arbitrary_bytes_raise_only_library_errors(answers: list[bytes]) -> None:
    machine = ReadFile.lds(LdsFile.DG2, channel=None, chunk=223)
    try:
        for raw in answers:
            machine.next_command()
            machine.receive_response(raw)
    except MacnssAuthError:
        assert machine.failed


# -- under secure messaging -------------------------------------------------------------


def channels() -> tuple[SecureChannel, CardSecureChannel]:
    keys = SessionKeys(SymmetricCipher.AES, bytes(range(16)), bytes(range(16, 32)))
    return SecureChannel(keys), CardSecureChannel(keys)


def test_protected_read_round_trip() -> None:
    terminal, card = channels()
    contents = a_file(500)
    machine = ReadFile.lds(LdsFile.DG2, channel=terminal, chunk=223)
    while not machine.finished:
        command = card.unprotect_command(machine.next_command())
        plain = answer(command.to_bytes(), contents)
        machine.receive_response(card.protect_response(ResponseAPDU.from_bytes(plain)))
    assert machine.result == contents


def test_plain_6700_to_extended_length_ends_the_session_with_advice() -> None:
    terminal, card = channels()
    machine = ReadFile.lds(LdsFile.DG2, channel=terminal, chunk=1000)
    card.unprotect_command(machine.next_command())
    with pytest.raises(ReadSessionEnded) as caught:
        machine.receive_response(b"\x67\x00")
    assert caught.value.extended_length_refused
    assert caught.value.status_word == 0x6700
    assert machine.progress == ReadProgress()


def test_plain_6cxx_ends_the_session_with_the_le_to_ask() -> None:
    terminal, card = channels()
    contents = a_file(600)
    machine = ReadFile.lds(LdsFile.DG2, channel=terminal, chunk=223)
    command = card.unprotect_command(machine.next_command())
    machine.receive_response(
        card.protect_response(ResponseAPDU.from_bytes(answer(command.to_bytes(), contents)))
    )
    machine.next_command()
    with pytest.raises(ReadSessionEnded) as caught:
        machine.receive_response(b"\x6c\x40")
    assert caught.value.le == 0x40
    assert not caught.value.extended_length_refused
    # The next session resumes at the offset and asks for what the chip said.
    resumed = ReadFile.lds(
        LdsFile.DG2, channel=None, chunk=223, resume=machine.progress, le_hint=caught.value.le
    )
    sent = read_plain(resumed, contents)
    assert sent[1].ne == 0x40
    assert resumed.result == contents


def test_plain_refusal_inside_secure_messaging_is_not_a_session_hint() -> None:
    terminal, card = channels()
    machine = ReadFile.lds(LdsFile.DG3, channel=terminal, chunk=223)
    card.unprotect_command(machine.next_command())
    with pytest.raises(SecureMessagingError) as caught:
        machine.receive_response(b"\x69\x82")
    assert not isinstance(caught.value, ReadSessionEnded)
    assert caught.value.status_word == 0x6982


def test_a_flipped_bit_is_tampering_without_a_status_word() -> None:
    terminal, card = channels()
    contents = a_file(100)
    machine = ReadFile.lds(LdsFile.DG2, channel=terminal, chunk=223)
    command = card.unprotect_command(machine.next_command())
    protected = bytearray(
        card.protect_response(ResponseAPDU.from_bytes(answer(command.to_bytes(), contents)))
    )
    protected[5] ^= 1
    with pytest.raises(SecureMessagingError) as caught:
        machine.receive_response(bytes(protected))
    assert caught.value.status_word is None


# -- construction and the table ----------------------------------------------------------


def test_configuration_is_checked() -> None:
    with pytest.raises(ConfigurationError):
        ReadFile(name="x", channel=None, chunk=223)
    with pytest.raises(ConfigurationError, match="file id"):
        ReadFile(name="x", short_file_id=2, channel=None, chunk=223, resume=ReadProgress(b"ab", 9))
    with pytest.raises(ConfigurationError):
        ReadFile(name="x", short_file_id=31, channel=None, chunk=223)
    with pytest.raises(ConfigurationError):
        ReadFile(name="x", short_file_id=2, channel=None, chunk=0)
    with pytest.raises(TypeError):
        ReadFile(name="x", short_file_id=2, channel="channel", chunk=223)  # type: ignore[arg-type]


def test_a_response_before_a_command_kills_the_read() -> None:
    machine = ReadFile.lds(LdsFile.DG1, channel=None, chunk=223)
    with pytest.raises(LocalProtocolError):
        machine.receive_response(SW_OK)
    with pytest.raises(LocalProtocolError):
        machine.next_command()


def test_chunk_sizes() -> None:
    assert read_chunk_size(SymmetricCipher.AES, extended=False, announced=None) == 223
    assert read_chunk_size(SymmetricCipher.TDES, extended=False, announced=None) == 231
    assert read_chunk_size(SymmetricCipher.AES, extended=True, announced=None) == 4096
    assert read_chunk_size(SymmetricCipher.AES, extended=True, announced=1000) == 975
    assert read_chunk_size(SymmetricCipher.AES, extended=True, announced=300) == 271


@pytest.mark.parametrize(
    "atr_info",
    [b"", b"\x7f\x66", bytes.fromhex("7F66040201FF"), bytes.fromhex("7F660602010002017F")],
)
def test_no_usable_announcement(atr_info: bytes) -> None:
    assert announced_response_size(atr_info) is None


# -- SELECT ------------------------------------------------------------------------------


class Script:
    """A transport that records commands and answers from a list."""

    def __init__(self, *answers: bytes) -> None:
        self.answers = list(answers)
        self.sent: list[bytes] = []

    def transceive(self, command: bytes) -> bytes:
        self.sent.append(command)
        return self.answers.pop(0)


def test_select_application_in_plain() -> None:
    script = Script(SW_OK)
    assert run(SelectApplication(channel=None), script) == b""
    assert script.sent == [bytes.fromhex("00A4040C07") + EMRTD_AID]


def test_select_application_refused() -> None:
    with pytest.raises(RemoteProtocolError, match="SELECT eMRTD application") as caught:
        run(SelectApplication(channel=None), Script(b"\x6a\x82"))
    assert caught.value.status_word == 0x6A82


def test_select_application_protected() -> None:
    terminal, card = channels()

    class Card:
        def transceive(self, command: bytes) -> bytes:
            plain = card.unprotect_command(command)
            assert plain.data == EMRTD_AID
            return card.protect_response(ResponseAPDU(b"", 0x9000))

    assert run(SelectApplication(EMRTD_AID, channel=terminal), Card()) == b""
    with pytest.raises(ConfigurationError):
        SelectApplication(b"\x01", channel=None)


def test_select_master_file_returns_any_status_word() -> None:
    script = Script(b"\x69\x88")
    assert run(SelectMasterFile(), script) == 0x6988
    assert script.sent == [bytes.fromhex("00A4000C023F00")]


def test_an_odd_read_may_fill_its_ne_with_do53() -> None:
    """Le of an odd READ BINARY counts DO'53' whole: a 3-byte header leaves room for one more."""
    contents = a_file(40_000)
    start = ReadProgress(contents[:32_768], len(contents))
    machine = ReadFile.lds(LdsFile.DG2, channel=None, chunk=223, resume=start)
    machine.next_command()
    machine.receive_response(SW_OK)
    odd = CommandAPDU.from_bytes(machine.next_command())
    assert odd.ne == 227
    machine.receive_response(encode_tlv(0x53, contents[32_768 : 32_768 + 224]) + SW_OK)
    assert len(machine.progress.data) == 32_768 + 224
    machine.next_command()
    with pytest.raises(RemoteProtocolError, match="bytes in answer to a READ BINARY of 227"):
        machine.receive_response(encode_tlv(0x53, contents[32_992 : 32_992 + 225]) + SW_OK)


def test_plain_reads_before_access_control() -> None:
    card_access = ReadFile.card_access()
    assert card_access.next_command() == bytes.fromhex("00B09C0000")
    card_access.receive_response(a_file(300, tag=0x31)[:256] + SW_OK)
    assert CommandAPDU.from_bytes(card_access.next_command()).ne == 44
    too_big = ReadFile.card_access()
    too_big.next_command()
    with pytest.raises(RemoteProtocolError, match="not plausible"):
        too_big.receive_response(bytes.fromhex("318210") + bytes(253) + SW_OK)
    atr_info = ReadFile.atr_info()
    assert atr_info.next_command() == bytes.fromhex("00B0810000")


MACHINES: dict[str, Callable[[], ProtocolMachine[Any, Any]]] = {
    "read": lambda: ReadFile.lds(LdsFile.DG1, channel=None, chunk=223),
    "resume": lambda: ReadFile.lds(
        LdsFile.DG2, channel=None, chunk=223, resume=ReadProgress(b"\x75\x10", 18)
    ),
    "select": lambda: SelectApplication(channel=None),
    "select-mf": SelectMasterFile,
}


@pytest.mark.parametrize("kind", sorted(MACHINES))
@settings(max_examples=150, deadline=None)
@given(
    calls=st.lists(
        st.one_of(st.none(), st.binary(max_size=40), st.sampled_from([SW_OK, b"\x62\x82"])),
        max_size=8,
    )
)
def test_any_call_order_follows_the_table(kind: str, calls: list[bytes | None]) -> None:
    """``None`` asks for a command, bytes are a response: whatever the table refuses kills."""
    machine = MACHINES[kind]()

    def do(call: bytes | None) -> None:
        if call is None:
            machine.next_command()
        else:
            machine.receive_response(call)

    for call in calls:
        expected = machine.expects
        if expected is None or (call is None) != (expected.value == "next_command"):
            # Out of turn: our error, and the object is dead.
            with pytest.raises(LocalProtocolError):
                do(call)
            break
        try:
            do(call)
        except MacnssAuthError:
            # The chip's bytes refused: dead as well.
            break
    else:
        return
    assert machine.failed
    with pytest.raises(LocalProtocolError):
        machine.next_command()


@pytest.mark.parametrize(
    "make",
    [
        lambda: ReadProgress(b"ab", None),  # bytes without a length
        lambda: ReadProgress(b"abc", 2),  # more than the file
        lambda: ReadProgress(b"", 0),
        lambda: ReadFile.lds(
            LdsFile.DG1, channel=None, chunk=223, resume=ReadProgress(b"ab", 2)
        ),  # nothing left
        lambda: ReadFile.lds(
            LdsFile.DG1, channel=None, chunk=223, max_length=100, resume=ReadProgress(b"ab", 200)
        ),
    ],
)
def test_inconsistent_progress_is_a_configuration_error(make: Callable[[], object]) -> None:
    with pytest.raises(ConfigurationError):
        make()


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(min_value=300, max_value=40_000),
    start=st.floats(min_value=0.0, max_value=0.99),
    plan=st.lists(st.tuples(st.booleans(), _STATUS, st.integers(0, 300)), max_size=20),
)
def test_resumed_reads_in_any_order_give_the_file_or_a_library_error(
    size: int, start: float, plan: list[tuple[bool, int, int]]
) -> None:
    """Resumed anywhere (odd INS past 32767 included): the file exactly, or a typed error."""
    contents = encode_tlv(0x75, bytes(i % 251 for i in range(size)))
    offset = max(1, int(len(contents) * start))
    progress = ReadProgress(contents[:offset], len(contents))
    machine = ReadFile.lds(LdsFile.DG2, channel=None, chunk=4000, resume=progress)
    steps = iter(plan)
    try:
        while not machine.finished:
            command = machine.next_command()
            honest, word, cut = next(steps, (True, 0x9000, 0))
            data = answer(command, contents)[:-2]
            if not honest:
                data = data[:cut]
            machine.receive_response(data + word.to_bytes(2, "big"))
    except MacnssAuthError:
        assert machine.failed
        assert contents.startswith(machine.progress.data)
        assert len(machine.progress.data) >= offset
        return
    assert machine.result == contents

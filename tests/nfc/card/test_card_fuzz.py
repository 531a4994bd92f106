"""A structure-aware fuzzer for the virtual card: it answers everything and stays usable.

A hypothesis state machine drives one card (several profiles, with quirks)
with a mix of:

* random bytes and random well-formed APDUs (short, extended, chained, GET
  RESPONSE), in plain, inside and outside a session;
* valid BAC, PACE and Chip Authentication runs with one command mutated (bit
  flips, cut or grown data, another tag, a wrong length byte, a data object's
  value -- a point, a nonce, a token, a key -- or the whole data replaced);
* PACE with right and wrong CANs, PINs and PUKs (retry counters move);
* commands inside a session, protected for real (random instructions, extended
  Le), tampered after protection, or -- on PACE sessions, whose keys the test
  knows -- built with the right MAC around a wrong structure (padding indicator,
  padding, DO'97' length, DO order, an unknown DO, a short MAC, a cut cryptogram).

Invariants: every answer is a well-formed response APDU; the card raises
nothing (it runs with ``raise_internal_errors=True``, so an internal error
fails the test with its traceback instead of hiding behind ``6F00``); a
protected answer to a tampered command never comes back; and whatever came
before, a real reader opens a fresh session and reads EF.COM.

The default budget is small (the ``ci`` profile's examples, short runs);
``HYPOTHESIS_PROFILE=fuzz HYPOTHESIS_EXAMPLES=N`` runs long.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from macnss_auth.errors import MacnssAuthError
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU
from macnss_auth.nfc.card import CardData, PasswordKind, VirtualCard, card_from_dump, issue_card
from macnss_auth.nfc.lds import parse_card_access
from macnss_auth.nfc.mrz import CAN, PIN, PUK
from macnss_auth.nfc.pace.terminal import PaceTerminal, select_pace_info
from macnss_auth.nfc.protocol import run
from macnss_auth.nfc.serve import MemoryTransport
from macnss_auth.nfc.sm import SecureChannel
from macnss_auth.nfc.tlv import encode_tlv, parse_all
from macnss_auth.testing import FixedClock, FixedRandom

from .conftest import NOW, issued
from .sm_craft import CraftingTerminal, Defects
from .terminal import (
    Session,
    active_authenticate,
    chip_authenticate,
    mrz_key,
    open_session,
    protected,
    read_file,
    read_plain_file,
)

# Standard profiles (BAC, PACE GM/IM/CAM, DH, PIN) and quirks that change the chip's answers.
PROFILES = [
    "passport-bac",
    "cnie",
    "pace-im",
    "pace-cam",
    "legacy-dh",
    "eid-pin",
    "get-response-61xx",
    "no-extended-length",
    "plain-errors",
    "wrong-le-6cxx",
    "short-reads-6282",
    "several-pace-infos",
    "ca-dh",
    "aa-ecdsa-der",
    "eac-dg3-dg4",
    "cnie+ca2",  # Chip Authentication version 2 (nonce and token)
    "ca-dh+ca2",
    "dump",  # the BSI 2008 specimen's files, served without chip keys (BAC and PACE)
]


VECTORS = Path(__file__).resolve().parents[2] / "vectors"


@functools.cache
def _issued(name: str) -> CardData:
    if name == "dump":
        return card_from_dump(VECTORS / "bsi2008", pace=True)
    profile, _, version = name.partition("+ca")
    if not version:
        return issued(profile).data
    return issue_card(
        profile, clock=FixedClock.at(NOW), can="123456", chip_authentication_version=int(version)
    ).data


EF_COM = 0x011E
SELECT_MF = bytes.fromhex("00A4000C023F00")
INSTRUCTIONS = [0xA4, 0xB0, 0xB1, 0x84, 0x82, 0x22, 0x86, 0x88, 0x2C, 0xC0, 0xCA, 0x00]


def well_formed(answer: bytes) -> ResponseAPDU:
    """The answer parsed; it must carry a status word."""
    assert isinstance(answer, bytes)
    assert len(answer) >= 2, answer.hex()
    return ResponseAPDU.from_bytes(answer)


@st.composite
def apdus(draw: st.DrawFn, *, secure: bool | None = None) -> CommandAPDU:
    """A well-formed command APDU: any of the seven cases, short or extended, maybe chained."""
    cla = draw(st.sampled_from([0x00, 0x10, 0x0C, 0x1C, 0x80, 0x01]))
    if secure is False:
        cla &= ~0x0C & 0xFF
    ins = draw(st.sampled_from(INSTRUCTIONS) | st.integers(0, 255))
    p1 = draw(
        st.sampled_from([0x00, 0x01, 0x02, 0x04, 0x41, 0x81, 0x8E, 0xC1]) | st.integers(0, 255)
    )
    p2 = draw(st.sampled_from([0x00, 0x0C, 0x1E, 0xA4, 0xA6, 0x03]) | st.integers(0, 255))
    size = draw(st.sampled_from([0, 0, 1, 2, 8, 40, 255, 256, 300]))
    data = draw(st.binary(min_size=size, max_size=size)) if size < 64 else bytes([0x5A]) * size
    ne = draw(st.none() | st.sampled_from([1, 8, 0xDF, 256, 257, 4096, 65536]))
    return CommandAPDU(cla, ins, p1, p2, data=data, ne=ne, extended=draw(st.booleans()))


Mutation = tuple[str, int, int, bytes]


@st.composite
def mutations(draw: st.DrawFn) -> Mutation:
    """How to spoil one command: (kind, position seed, value, replacement bytes)."""
    kind = draw(
        st.sampled_from(
            ["flip", "cut", "grow", "byte", "lc", "tag", "drop-last", "empty-data", "value", "data"]
        )
    )
    blob = draw(st.binary(max_size=300) | st.sampled_from([b"", b"\x00", b"\x04", bytes(65)]))
    return kind, draw(st.integers(0, 1 << 16)), draw(st.integers(0, 255)), blob


def mutate(raw: bytes, mutation: Mutation) -> bytes:
    """``raw`` spoiled by ``mutation``.

    ``value`` replaces the value of the first data object inside the command's
    ``7C`` (or other outer) object -- a PACE point, a nonce, a token, a CA key --
    and ``data`` the whole command data; both keep the APDU well formed, so the
    card's handlers, not its parser, see them.
    """
    kind, seed, value, blob = mutation
    out = bytearray(raw)
    if kind in ("value", "data"):
        try:
            command = CommandAPDU.from_bytes(raw)
        except MacnssAuthError:
            return raw[:-1]
        data = blob
        if kind == "value":
            try:
                outer = parse_all(command.data)
                inner = parse_all(outer[0].value) if outer[0].value else []
            except (MacnssAuthError, IndexError):
                inner, outer = [], []
            if inner:
                first = encode_tlv(inner[0].tag, blob)
                rest = b"".join(encode_tlv(item.tag, item.value) for item in inner[1:])
                data = encode_tlv(outer[0].tag, first + rest)
            elif outer:
                data = encode_tlv(outer[0].tag, blob)
        return CommandAPDU(
            command.cla, command.ins, command.p1, command.p2, data=data, ne=command.ne
        ).to_bytes()
    if kind == "flip":
        position = seed % len(out)
        out[position] ^= 1 << (value % 8)
    elif kind == "cut":
        del out[-(1 + seed % max(1, len(out) - 1)) :]
    elif kind == "grow":
        out[-1:-1] = bytes([value]) * (1 + seed % 40)
    elif kind == "byte":
        out[seed % len(out)] = value
    elif kind == "lc" and len(out) > 4:
        out[4] = value
    elif kind == "tag" and len(out) > 5:
        out[5] = value  # the first data byte: the outer tag of 7C / 80 / 91 ...
    elif kind == "drop-last":
        del out[-1]
    elif kind == "empty-data" and len(out) > 5:
        out = out[:4] + (b"\x00" if len(raw) > 5 + raw[4] else b"")
    return bytes(out)


class _Mutating:
    """A transport that spoils the ``at``-th command (1-based) it carries."""

    def __init__(self, inner: MemoryTransport, at: int, mutation: Mutation) -> None:
        self.inner, self.at, self.mutation = inner, at, mutation
        self.sent = 0
        self.spoiled = False

    def transceive(self, command: bytes) -> bytes:
        self.sent += 1
        if self.sent == self.at:
            command = mutate(command, self.mutation)
            self.spoiled = True
        answer = self.inner.transceive(command)
        well_formed(answer)
        return answer


defects = st.builds(
    Defects,
    padding_indicator=st.sampled_from([0x01, 0x00, 0x02, 0xFF]),
    bad_padding=st.booleans(),
    le_length=st.none() | st.integers(0, 4),
    odd_tag=st.booleans(),
    swap_order=st.booleans(),
    extra_object=st.sampled_from([b"", b"\x99\x02\x90\x00", b"\x01\x00", b"\x87\x00"]),
    empty_cryptogram=st.booleans(),
    short_mac=st.booleans(),
    cryptogram_cut=st.sampled_from([0, 0, 1, 8]),
)


class CardFuzzer(RuleBasedStateMachine):
    """One card, many abuses; a real reader must still get in at the end."""

    def __init__(self) -> None:
        super().__init__()
        self.card: VirtualCard
        self.transport: MemoryTransport
        self.data: CardData
        self.channel: SecureChannel | None = None
        self.seed = 10
        self.steps = 0

    @initialize(profile=st.sampled_from(PROFILES))
    def issue(self, profile: str) -> None:
        self.profile = profile
        self.data = _issued(profile)
        self.card = VirtualCard(self.data, random=FixedRandom(1), raise_internal_errors=True)
        self.transport = MemoryTransport(self.card)

    def _random(self) -> FixedRandom:
        self.seed += 1
        return FixedRandom(self.seed)

    def _password(self) -> PasswordKind:
        passwords = self.data.profile.pace_passwords
        if self.data.profile.pace_protocol is None or PasswordKind.MRZ in passwords:
            return PasswordKind.MRZ
        return PasswordKind.CAN

    def _forget(self) -> None:
        self.channel = None

    def _to_mf(self) -> None:
        """SELECT the MF in plain (a session the reader does not know ends with the first try)."""
        if self.card.session is not None:
            assert well_formed(self.card.process(SELECT_MF)).sw == 0x6982
        assert well_formed(self.card.process(SELECT_MF)).sw == 0x9000

    def _open(self, transport: MemoryTransport | _Mutating) -> None:
        """Open a session the way a reader does (PACE where offered, otherwise BAC)."""
        self._forget()
        self._to_mf()
        session = open_session(
            transport,
            self.data,
            random=self._random(),
            password=self._password(),
            can="123456",
        )
        self.channel = session.channel

    # -- garbage, plain --------------------------------------------------------------------

    @rule(raw=st.binary(max_size=300))
    def random_bytes(self, raw: bytes) -> None:
        well_formed(self.card.process(raw))
        self._forget()

    @rule(command=apdus())
    def random_apdu(self, command: CommandAPDU) -> None:
        well_formed(self.card.process(command.to_bytes()))
        self._forget()

    @rule(ne=st.integers(0, 255))
    def get_response(self, ne: int) -> None:
        well_formed(self.card.process(bytes([0x00, 0xC0, 0x00, 0x00, ne])))
        self._forget()

    @rule()
    def tap(self) -> None:
        self.transport.tap()
        self._forget()

    # -- sessions, whole or spoiled ------------------------------------------------------

    @rule()
    def open_a_session(self) -> None:
        self._open(self.transport)

    @rule(at=st.integers(1, 12), mutation=mutations())
    def spoiled_session(self, at: int, mutation: Mutation) -> None:
        """BAC or PACE with one command spoiled: a typed error or a session, never a crash."""
        spoiling = _Mutating(self.transport, at, mutation)
        try:
            self._open(spoiling)
        except MacnssAuthError:
            self._forget()
            return
        if spoiling.spoiled:
            self._forget()  # a session despite a spoiled command: not trusted further

    @rule(
        kind=st.sampled_from([CAN, PIN, PUK]),
        digits=st.sampled_from(["123456", "000000", "1234", "12345678", "1234567890"]),
    )
    @precondition(lambda self: self.data.profile.pace_protocol is not None)
    def pace_with_a_password(self, kind: type[CAN | PIN | PUK], digits: str) -> None:
        """PACE with a CAN, a PIN or a PUK, right or wrong (retry counters move)."""
        self._forget()
        self._to_mf()
        try:
            secret = kind(digits)
            info = select_pace_info(
                parse_card_access(read_plain_file(self.transport, 0x011C)).infos
            )
            run(PaceTerminal(secret, info, random=self._random()), self.transport)
        except MacnssAuthError:
            pass
        self._forget()

    @rule(at=st.integers(1, 3), mutation=mutations())
    @precondition(
        lambda self: self.channel is not None and self.data.profile.chip_authentication is not None
    )
    def spoiled_chip_authentication(self, at: int, mutation: Mutation) -> None:
        """Chip Authentication (where DG14 has a key) with one command spoiled."""
        channel = self.channel
        assert channel is not None
        self._forget()
        try:
            dg14 = read_file(self.transport, channel, 0x010E)
        except MacnssAuthError:
            return
        session = Session(channel, "fuzz")
        try:
            chip_authenticate(
                _Mutating(self.transport, at, mutation),
                session,
                dg14,
                random=self._random(),
            )
        except MacnssAuthError:
            return

    @rule(challenge=st.binary(min_size=8, max_size=8))
    @precondition(lambda self: self.channel is not None)
    def active_authentication(self, challenge: bytes) -> None:
        channel = self.channel
        assert channel is not None
        self._forget()
        try:
            dg15 = read_file(self.transport, channel, 0x010F)
            active_authenticate(self.transport, Session(channel, "fuzz"), dg15, challenge)
        except MacnssAuthError:
            return
        self.channel = channel

    # -- inside a session ------------------------------------------------------------------

    @rule(command=apdus(secure=False))
    @precondition(lambda self: self.channel is not None)
    def protected_command(self, command: CommandAPDU) -> None:
        """A real protected command; the card answers it protected, or in plain and ends."""
        channel = self.channel
        assert channel is not None
        try:
            wrapped = channel.protect(command)
        except MacnssAuthError:
            self._forget()
            return
        answer = self.transport.transceive(wrapped)
        well_formed(answer)
        try:
            channel.unprotect(answer)
        except MacnssAuthError:
            self._forget()

    @rule(command=apdus(secure=False), mutation=mutations())
    @precondition(lambda self: self.channel is not None)
    def tampered_command(self, command: CommandAPDU, mutation: Mutation) -> None:
        """A protected command spoiled in its header or body: never a protected answer."""
        channel = self.channel
        assert channel is not None
        self._forget()
        try:
            wrapped = channel.protect(command)
        except MacnssAuthError:
            return
        # The outer Le (one byte, two when extended) is not covered by the MAC: spoil
        # everything before it.
        le = 2 if CommandAPDU.from_bytes(wrapped).is_extended else 1
        spoiled = mutate(wrapped[:-le], mutation) + wrapped[-le:]
        if spoiled == wrapped:
            return
        answer = self.transport.transceive(spoiled)
        response = well_formed(answer)
        assert len(answer) == 2, f"protected answer to a tampered command: {response!r}"

    @rule(command=apdus(secure=False), defect=defects)
    @precondition(lambda self: self.data.profile.pace_protocol is not None)
    def crafted_command(self, command: CommandAPDU, defect: Defects) -> None:
        """On a fresh PACE session: a command with the right MAC around a chosen structure."""
        self._forget()
        crafting = self._pace_crafting()
        raw = crafting.command(
            command.ins,
            command.p1,
            command.p2,
            command.data,
            command.ne,
            defects=defect,
            extended=command.extended,
        )
        answer = self.card.process(raw)
        well_formed(answer)
        if _must_refuse(command, defect):
            assert len(answer) == 2, f"protected answer to a malformed command: {answer.hex()}"
        crafting.response(answer)  # a protected answer must verify
        self._forget()

    def _pace_crafting(self) -> CraftingTerminal:
        """A PACE session whose keys the test holds (the terminal's channel is not used)."""
        self._to_mf()
        info = select_pace_info(parse_card_access(read_plain_file(self.transport, 0x011C)).infos)
        secret = mrz_key(self.data) if self._password() is PasswordKind.MRZ else CAN("123456")
        result = run(PaceTerminal(secret, info, random=self._random()), self.transport)
        return CraftingTerminal(result.keys, ssc=0)

    # -- the invariant ---------------------------------------------------------------------

    @invariant()
    def a_reader_still_gets_in(self) -> None:
        """Every few steps: whatever happened, a fresh session opens and EF.COM reads."""
        self.steps += 1
        if self.steps % 4 == 0:
            self._reader_gets_in()

    def teardown(self) -> None:
        """At the end of every run too."""
        if hasattr(self, "card"):
            self._reader_gets_in()

    def _reader_gets_in(self) -> None:
        self._open(self.transport)
        channel = self.channel
        assert channel is not None
        select = CommandAPDU(0x00, 0xA4, 0x02, 0x0C, data=EF_COM.to_bytes(2, "big"))
        assert protected(self.transport, channel, select).sw == 0x9000
        head = protected(self.transport, channel, CommandAPDU(0x00, 0xB0, 0, 0, ne=4))
        assert (head.sw, head.data[:1]) == (0x9000, b"\x60")  # EF.COM's tag
        assert self.card.internal_errors == 0


def _must_refuse(command: CommandAPDU, defect: Defects) -> bool:
    """Whether ``defect`` makes the protected command invalid (ICAO 9303-11 §9.8)."""
    has_cryptogram = bool(command.data) or defect.empty_cryptogram
    has_le = command.ne is not None or defect.le_length is not None
    odd = bool(command.ins & 1) != defect.odd_tag
    return bool(
        defect.short_mac
        or defect.extra_object
        or (
            has_cryptogram
            and (
                defect.empty_cryptogram
                or defect.cryptogram_cut
                or defect.odd_tag
                or (defect.padding_indicator != 0x01 and not odd)
            )
        )
        or (has_le and defect.le_length is not None and defect.le_length not in (1, 2))
        or (defect.swap_order and has_cryptogram and has_le)
    )


TestCardFuzzer = pytest.mark.slow(CardFuzzer.TestCase)
# The suite's profile (ci) gets a short run; the fuzz and long profiles' budgets are taken as
# given (`make fuzz` runs the slow tests with the long profile).
_BUDGET = settings().max_examples
TestCardFuzzer.settings = settings(
    max_examples=_BUDGET if _BUDGET > 200 else 25, stateful_step_count=20
)

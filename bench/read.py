"""How fast a whole document reads over a modelled NFC link, and how much of it is our CPU.

Run: ``.venv/bin/python bench/read.py``.

Link model (ISO/IEC 14443 at 106 kbit/s, the only rate nfcpy's ISO-DEP uses):
each byte on air takes 9 bits (8 data + 1 parity), each frame adds 4 bytes
(PCB, CRC, SOF/EOF as a byte), frames carry at most ``FSC - 3`` bytes of
APDU (FSC 256 for PN53x-class readers), and every frame exchange costs a
turnaround; each APDU also costs the chip ``CHIP_APDU`` seconds of work.
The simulated link time is charged by a transport wrapper, so results are
deterministic; our own CPU time is measured for real.

The document: the ``cnie`` profile (PACE ECDH-GM brainpoolP256r1, AES-128,
CA, AA) with DG1, a 20 KB DG2 and the SOD, read twice: with short APDUs and
with the extended length the chip announces in EF.ATR/INFO. The baseline is
the theoretical minimum for the same bytes: the same access protocol, then
every file in the fewest READ BINARYs the APDU size allows (223 plain bytes
per protected short response, 4096 with extended length).
"""

from __future__ import annotations

import math
import time

import attrs

from macnss_auth.nfc.card import CardData, issue_card
from macnss_auth.nfc.card.chip import VirtualCard
from macnss_auth.nfc.lds import encode_dg2
from macnss_auth.nfc.mrz import CAN
from macnss_auth.nfc.reader import DocumentReader
from macnss_auth.nfc.serve import MemoryTransport
from macnss_auth.testing import FixedClock, FixedRandom

__all__ = ["LinkModel", "main"]

BIT_RATE = 106_000
BITS_PER_BYTE = 9
FRAME_OVERHEAD = 4
FSC = 256
TURNAROUND = 0.0005  # seconds between frames (frame delay time and reader latency)
CHIP_APDU = 0.002  # seconds a chip spends on a READ BINARY under secure messaging
CHUNK = 223


def frames(length: int) -> int:
    """ISO-DEP I-blocks needed for an APDU of ``length`` bytes."""
    return max(1, math.ceil(length / (FSC - 3)))


def air_time(length: int) -> float:
    """Seconds to move ``length`` bytes of APDU across the link, framing included."""
    count = frames(length)
    return (length + count * FRAME_OVERHEAD) * BITS_PER_BYTE / BIT_RATE + count * TURNAROUND


class LinkModel:
    """A transport that charges link time for every exchange and counts the card's CPU."""

    def __init__(self, inner: MemoryTransport) -> None:
        self.inner = inner
        self.link_seconds = 0.0
        self.card_cpu = 0.0
        self.round_trips = 0

    def transceive(self, command: bytes) -> bytes:
        started = time.process_time()
        response = self.inner.transceive(command)
        self.card_cpu += time.process_time() - started
        self.round_trips += 1
        self.link_seconds += air_time(len(command)) + air_time(len(response)) + CHIP_APDU
        return response


def _length_field(n: int) -> int:
    return 1 if n < 0x80 else (2 if n < 0x100 else 3)


def protected_read_lengths(plain: int, *, extended: bool) -> tuple[int, int]:
    """Command and response lengths of one protected READ BINARY returning ``plain`` bytes."""
    le = 2 if extended else 1
    body = (2 + le) + 10  # DO'97' and DO'8E'
    command = 4 + (3 if extended else 1) + body + (2 if extended else 1)
    padded = (plain // 16 + 1) * 16
    do87 = 1 + _length_field(padded + 1) + 1 + padded
    return command, do87 + 4 + 10 + 2


def minimum(
    files: dict[str, int], access_trips: int, access_link: float, *, chunk: int
) -> tuple[int, float]:
    """Fewest round trips and least link time to read ``files`` (name -> length)."""
    trips, link = access_trips, access_link
    for length in files.values():
        full, rest = divmod(length, chunk)
        for size in [chunk] * full + ([rest] if rest else []):
            command, response = protected_read_lengths(size, extended=chunk > 256)
            trips += 1
            link += air_time(command) + air_time(response) + CHIP_APDU
    return trips, link


def run(data: CardData, *, extended: bool, chunk: int) -> None:
    """Read DG1 + DG2 + SOD once; print reader vs minimum side by side."""
    link = LinkModel(MemoryTransport(VirtualCard(data, random=FixedRandom(1))))
    reader = DocumentReader(
        link, random=FixedRandom(2), data_groups=(1, 2), extended_length=extended
    )
    cpu_start = time.process_time()
    result = reader.read(CAN("123456"))
    reader_cpu = time.process_time() - cpu_start - link.card_cpu

    sizes = {name: len(result.files[name]) for name in ("COM", "SOD", "DG1", "DG2")}
    # Access (EF.CardAccess, MSE:Set AT, four GENERAL AUTHENTICATE, SELECT) is the same
    # for any reader: take it from a probe that reads only the small files.
    probe = LinkModel(MemoryTransport(VirtualCard(data, random=FixedRandom(1))))
    DocumentReader(probe, random=FixedRandom(2), data_groups=(1,), extended_length=extended).read(
        CAN("123456")
    )
    small = {name: sizes[name] for name in ("COM", "SOD", "DG1")}
    small_trips, small_link = minimum(small, 0, 0.0, chunk=chunk)
    access_trips = probe.round_trips - small_trips
    access_link = probe.link_seconds - small_link
    best_trips, best_link = minimum(sizes, access_trips, access_link, chunk=chunk)

    mode = f"extended length ({chunk} B per read)" if extended else f"short APDUs ({chunk} B)"
    print(f"\n{mode}: {', '.join(f'{k} {v} B' for k, v in sizes.items())}")
    print(f"{'':28}{'reader':>12}{'minimum':>12}{'ratio':>8}")
    print(
        f"{'round trips':28}{link.round_trips:>12}{best_trips:>12}"
        f"{link.round_trips / best_trips:>8.3f}"
    )
    print(
        f"{'link time (s)':28}{link.link_seconds:>12.3f}{best_link:>12.3f}"
        f"{link.link_seconds / best_link:>8.3f}"
    )
    share = reader_cpu / (link.link_seconds + reader_cpu)
    print(f"{'reader CPU (s)':28}{reader_cpu:>12.4f}   ({share:.1%} of the read time)")


def main() -> None:
    clock = FixedClock.at(1_800_000_000)
    card = issue_card("cnie", clock=clock, can="123456")
    face = bytes([0xFF, 0xD8, 0xFF, 0xE0]) + bytes(20_000 - 6) + bytes([0xFF, 0xD9])
    path = next(p for p in card.data.files.files() if p.endswith("/DG2"))
    dg2 = encode_dg2(face, width=480, height=640)
    data = attrs.evolve(card.data, files=card.data.files.replace_data(path, dg2))
    run(data, extended=False, chunk=CHUNK)
    run(data, extended=True, chunk=4096)


if __name__ == "__main__":
    main()

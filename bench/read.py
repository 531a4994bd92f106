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
CA, AA) with DG1, a 20 KB DG2 and the SOD. The baseline is the theoretical
minimum for the same bytes: the same PACE, then every file in the fewest
READ BINARYs that short APDUs allow (223 plain bytes per protected response).
"""

from __future__ import annotations

import math
import time

import attrs

from macnss_auth.nfc.card import issue_card
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


def protected_read_lengths(plain: int) -> tuple[int, int]:
    """Command and response lengths of one protected READ BINARY returning ``plain`` bytes."""
    command = 4 + 1 + 3 + 10 + 1  # header, Lc, DO'97', DO'8E', Le
    padded = (plain // 16 + 1) * 16
    do87 = 1 + (2 if padded + 1 > 127 else 1) + 1 + padded
    return command, do87 + 4 + 10 + 2


def minimum(files: dict[str, int], access_trips: int, access_link: float) -> tuple[int, float]:
    """Fewest round trips and least link time to read ``files`` (name -> length)."""
    trips, link = access_trips, access_link
    for length in files.values():
        full, rest = divmod(length, CHUNK)
        for size in [CHUNK] * full + ([rest] if rest else []):
            command, response = protected_read_lengths(size)
            trips += 1
            link += air_time(command) + air_time(response) + CHIP_APDU
    return trips, link


def main() -> None:
    clock = FixedClock.at(1_800_000_000)
    card = issue_card("cnie", clock=clock, can="123456")
    face = bytes([0xFF, 0xD8, 0xFF, 0xE0]) + bytes(20_000 - 6) + bytes([0xFF, 0xD9])
    path = next(p for p in card.data.files.files() if p.endswith("/DG2"))
    dg2 = encode_dg2(face, width=480, height=640)
    data = attrs.evolve(card.data, files=card.data.files.replace_data(path, dg2))

    link = LinkModel(MemoryTransport(VirtualCard(data, random=FixedRandom(1))))
    reader = DocumentReader(link, random=FixedRandom(2), data_groups=(1, 2))
    cpu_start = time.process_time()
    result = reader.read(CAN("123456"))
    total_cpu = time.process_time() - cpu_start
    reader_cpu = total_cpu - link.card_cpu

    sizes = {name: len(result.files[name]) for name in ("COM", "SOD", "DG1", "DG2")}
    # Access: EF.CardAccess, MSE:Set AT, four GENERAL AUTHENTICATE, SELECT (as measured).
    access_trips = 7
    access_probe = LinkModel(MemoryTransport(VirtualCard(data, random=FixedRandom(1))))
    DocumentReader(access_probe, random=FixedRandom(2), data_groups=(1,)).read(CAN("123456"))
    one_file = minimum({"COM": sizes["COM"], "SOD": sizes["SOD"], "DG1": sizes["DG1"]}, 0, 0.0)
    access_link = access_probe.link_seconds - one_file[1]
    best_trips, best_link = minimum(sizes, access_trips, access_link)

    print(f"document: {', '.join(f'{k} {v} B' for k, v in sizes.items())}")
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
    print(f"{'reader CPU (s)':28}{reader_cpu:>12.4f}")
    print(f"reader CPU share of the total read time: {share:.1%}")


if __name__ == "__main__":
    main()

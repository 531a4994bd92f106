"""How fast a whole document reads over a modelled NFC link, and how much of it is our CPU.

Run: ``.venv/bin/python bench/read.py`` (about a second; the link is a model, so
the figures are deterministic and there is no longer variant). Exits 1 when a
row's ratio to its minimum is above its floor (1.0 for the ``cnie`` reads,
1.15 for the specimen, 1.3 and 1.5 for the quirk profiles) or the reader's CPU
is above 5% of the read time.

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

Field rows (issue 16): the BSI 2008 specimen served from its files (a real
issuer's EF.COM, SOD, DG1, DG2, DG14; PACE with the CAN, Chip Authentication
that cannot succeed), and two quirk profiles: ``short-reads-6282`` (160 bytes
per READ BINARY at most) and ``no-extended-length`` (announces extended length,
then refuses it and drops secure messaging). Their minimum is the same access
plus the files in full 223/231-byte reads: the gap is what the quirk costs
(DG1 and DG2 only, so no CA/AA exchange is in either column). The specimen
row asks for DG14 too: Chip Authentication is tried and cannot succeed.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import attrs

from macnss_auth.nfc.card import CardData, card_from_dump, issue_card
from macnss_auth.nfc.card.chip import VirtualCard
from macnss_auth.nfc.lds import encode_dg2
from macnss_auth.nfc.mrz import CAN, MrzKey
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
        #: (round trips, link seconds) before the first protected READ BINARY: the access.
        self.access: tuple[int, float] | None = None

    def transceive(self, command: bytes) -> bytes:
        if self.access is None and command[:1] == b"\x0c" and command[1:2] in (b"\xb0", b"\xb1"):
            self.access = (self.round_trips, self.link_seconds)
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


def run(
    data: CardData,
    *,
    extended: bool | None,
    chunk: int,
    label: str | None = None,
    password: CAN | MrzKey | None = None,
    data_groups: tuple[int, ...] = (1, 2),
    floor: float = 1.0,
) -> list[str]:
    """Read the document once; print reader vs minimum side by side; return missed floors.

    ``floor``: the largest ratio to the minimum allowed for round trips and link time.
    """
    link = LinkModel(MemoryTransport(VirtualCard(data, random=FixedRandom(1))))
    reader = DocumentReader(
        link, random=FixedRandom(2), data_groups=data_groups, extended_length=extended
    )
    cpu_start = time.process_time()
    result = reader.read(password or CAN("123456"))
    reader_cpu = time.process_time() - cpu_start - link.card_cpu

    sizes = {name: len(data) for name, data in result.files.items()}
    # Access (EF.CardAccess, MSE:Set AT, four GENERAL AUTHENTICATE, SELECT; or BAC) is
    # the same for any reader: everything before the first protected READ BINARY.
    access_trips, access_link = link.access or (0, 0.0)
    best_trips, best_link = minimum(sizes, access_trips, access_link, chunk=chunk)

    mode = label or (
        f"extended length ({chunk} B per read)" if extended else f"short APDUs ({chunk} B)"
    )
    print(f"\n{mode}: {', '.join(f'{k} {v} B' for k, v in sorted(sizes.items()))}")
    if result.steps:
        print("  steps: " + "; ".join(f"{s.name}: {s.reason}" for s in result.steps))
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
    missed = []
    if link.round_trips / best_trips > floor or link.link_seconds / best_link > floor:
        missed.append(f"{mode}: ratio above {floor:.2f}")
    if share > CPU_SHARE_FLOOR:
        missed.append(f"{mode}: reader CPU above {CPU_SHARE_FLOOR:.0%} of the read time")
    print(
        f"  floor: ratios <= {floor:.2f}, CPU <= {CPU_SHARE_FLOOR:.0%}: "
        + ("MISSED" if missed else "ok")
    )
    return missed


#: The reader's CPU may take at most this share of a read (the link dominates).
CPU_SHARE_FLOOR = 0.05


SPECIMEN = Path(__file__).resolve().parents[1] / "tests" / "vectors" / "bsi2008"


def field_rows(clock: FixedClock) -> list[str]:
    """The specimen from its files, and two quirk profiles, against their minimum."""
    specimen = card_from_dump(SPECIMEN, pace=True)
    missed = run(
        specimen,
        extended=None,
        chunk=CHUNK,
        label="BSI 2008 specimen from its files (PACE CAN, CA cannot succeed)",
        data_groups=(1, 2, 14),
        floor=1.15,
    )
    short = issue_card("short-reads-6282", clock=clock)
    info = short.data.secrets.mrz_information
    missed += run(
        short.data,
        extended=None,
        chunk=231,
        label="quirk short-reads-6282 (BAC 3DES; chip gives 160 B per read)",
        password=MrzKey(info[0:9], info[10:16], info[17:23]),
        floor=1.3,
    )
    refusing = issue_card("no-extended-length", clock=clock, can="123456")
    missed += run(
        refusing.data,
        extended=None,
        chunk=CHUNK,
        label="quirk no-extended-length (announced, refused: one more PACE, short reads)",
        floor=1.5,
    )
    return missed


def main() -> int:
    """Print the tables; return 1 when a ratio floor is missed."""
    clock = FixedClock.at(1_800_000_000)
    card = issue_card("cnie", clock=clock, can="123456")
    face = bytes([0xFF, 0xD8, 0xFF, 0xE0]) + bytes(20_000 - 6) + bytes([0xFF, 0xD9])
    path = next(p for p in card.data.files.files() if p.endswith("/DG2"))
    dg2 = encode_dg2(face, width=480, height=640)
    data = attrs.evolve(card.data, files=card.data.files.replace_data(path, dg2))
    missed = run(data, extended=False, chunk=CHUNK)
    missed += run(data, extended=True, chunk=4096)
    missed += field_rows(clock)
    if missed:
        print("\nfloors missed: " + "; ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Terminal-side CPU cost of the eID protocols: BAC, secure messaging (and PACE).

Run: ``.venv/bin/python bench/protocols.py`` (a few seconds); ``--repeat N``
for steadier numbers, ``--check`` to exit non-zero when a floor is missed.

Only the terminal's work is timed: the chip's answers are recorded once
beforehand (the terminal's randomness is fixed, so its commands, and hence the
answers, are the same every round) and replayed inside the timed loop. Times
are process CPU time, best of ``--repeat`` rounds, per operation.

Rows are grouped; within a group every row is also shown as a ratio to the
group's first row, so the table reads "AES-256 costs 1.1x AES-128".

Adding rows (e.g. PACE): write a function ``def my_cases() -> list[Case]``
below the marked place and add it to :data:`CASE_BUILDERS`. A :class:`Case`
names its group and row, says how many operations one call of ``run``
performs, and may carry a floor in microseconds per operation.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import attrs

from macnss_auth.nfc import pace, tlv
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU
from macnss_auth.nfc.bac import BacProtocol, card_authenticate, derive_bac_keys
from macnss_auth.nfc.crypto import SymmetricCipher
from macnss_auth.nfc.domain_params import standardized
from macnss_auth.nfc.ec import Curve
from macnss_auth.nfc.mrz import MrzKey
from macnss_auth.nfc.pace import PaceTerminal
from macnss_auth.nfc.securityinfos import Mapping, PaceInfo, PaceOid
from macnss_auth.nfc.sm import CardSecureChannel, SecureChannel, SessionKeys
from macnss_auth.testing import FixedRandom

__all__ = ["CASE_BUILDERS", "Case", "bac_cases", "main", "pace_cases", "sm_cases"]

#: The largest READ BINARY whose protected answer still fits a short response (ICAO practice).
READ_LENGTH = 223


@attrs.frozen
class Case:
    """One benchmark row.

    Attributes:
        group: rows of a group are compared with the group's first row.
        name: the row's label.
        run: performs ``operations`` operations per call (all setup done before).
        operations: how many operations one call of ``run`` performs.
        floor_us: the most microseconds per operation allowed, if any.
    """

    group: str
    name: str
    run: Callable[[], None]
    operations: int = 1
    floor_us: float | None = None


# -- BAC ---------------------------------------------------------------------------

MRZ = MrzKey("L898902C<", "690806", "940623")


def bac_cases() -> list[Case]:
    """A full terminal-side BAC (two commands, key derivation, checks)."""
    keys = derive_bac_keys(MRZ)
    rnd_ic, k_ic = bytes.fromhex("4608F91988702212"), bytes(range(16))
    # Record the chip's answers to the terminal seeded with 42.
    recorder = BacProtocol(MRZ, random=FixedRandom(42))
    recorder.next_command()
    recorder.receive_response(rnd_ic + b"\x90\x00")
    authenticate = CommandAPDU.from_bytes(recorder.next_command())
    answer = card_authenticate(keys, rnd_ic, authenticate.data, k_ic).response_data + b"\x90\x00"
    challenge = rnd_ic + b"\x90\x00"

    def full_bac() -> None:
        terminal = BacProtocol(MRZ, random=FixedRandom(42))
        terminal.next_command()
        terminal.receive_response(challenge)
        terminal.next_command()
        terminal.receive_response(answer)
        _ = terminal.result

    return [Case("BAC", "full BAC (MRZ -> channel)", full_bac)]


# -- secure messaging -----------------------------------------------------------------

SM_BATCH = 200


def _sm_case(label: str, cipher: SymmetricCipher, key_bits: int, floor_us: float | None) -> Case:
    keys = SessionKeys.derive(b"benchmark shared secret", cipher, key_bits)
    command = CommandAPDU(0x00, 0xB0, 0x00, 0x00, ne=READ_LENGTH)
    plain = ResponseAPDU(bytes(range(READ_LENGTH)), 0x9000)
    # Record the card's protected answers for one batch, in SSC order.
    terminal, card = SecureChannel(keys, ssc=0), CardSecureChannel(keys, ssc=0)
    answers = []
    for _ in range(SM_BATCH):
        card.unprotect_command(terminal.protect(command))
        answers.append(card.protect_response(plain))
        terminal.unprotect(answers[-1])

    def wrap_unwrap() -> None:
        channel = SecureChannel(keys, ssc=0)
        for answer in answers:
            channel.protect(command)
            channel.unprotect(answer)

    return Case(
        "SM wrap+unwrap per APDU (READ BINARY 223 bytes)",
        label,
        wrap_unwrap,
        operations=SM_BATCH,
        floor_us=floor_us,
    )


def sm_cases() -> list[Case]:
    """Protect a READ BINARY and unprotect its 223-byte answer, per cipher."""
    return [
        _sm_case("3DES", SymmetricCipher.TDES, 112, None),
        _sm_case("AES-128", SymmetricCipher.AES, 128, 100.0),
        _sm_case("AES-256", SymmetricCipher.AES, 256, 100.0),
    ]


# -- PACE ------------------------------------------------------------------------------

PACE_SEED = 42


def _pace_answers(info: PaceInfo) -> list[bytes]:
    """The chip's answers to a terminal seeded with PACE_SEED (chip side: the pure functions)."""
    protocol, cipher, bits = info.protocol, info.protocol.cipher, info.protocol.key_bits
    curve = standardized(info.parameter_id or 0)
    if not isinstance(curve, Curve):
        raise TypeError("these PACE rows are ECDH")
    base = pace.base_domain(curve)
    chip_random = FixedRandom(7)
    static_key = 0xC0FFEE
    terminal = PaceTerminal(MRZ, info, random=FixedRandom(PACE_SEED))
    answers = [b"\x90\x00"]
    terminal.next_command()
    terminal.receive_response(answers[-1])

    def objects(command: bytes) -> dict[int, bytes]:
        outer, _ = tlv.parse_one(CommandAPDU.from_bytes(command).data)
        return {item.tag: item.value for item in tlv.parse_all(outer.value)}

    def answer(data: bytes) -> None:
        answers.append(tlv.encode_tlv(0x7C, data) + b"\x90\x00")
        terminal.receive_response(answers[-1])

    terminal.next_command()
    length = pace.integrated_mapping_lengths(cipher, bits)[0]
    nonce = chip_random.token_bytes(length)
    k_pi = pace.password_key(MRZ, cipher, bits)
    answer(tlv.encode_tlv(0x80, pace.encrypt_nonce(cipher, k_pi, nonce)))
    sent = objects(terminal.next_command())
    mapping_key = pace.generate_private_key(base, chip_random)
    if protocol.mapping is Mapping.INTEGRATED:
        domain = pace.integrated_mapping(base, nonce, sent[0x81], cipher, bits)
        answer(tlv.encode_tlv(0x82, b""))
    else:
        shared = pace.mapping_shared_element(base, mapping_key, sent[0x81])
        domain = pace.generic_mapping(base, nonce, shared)
        answer(tlv.encode_tlv(0x82, pace.public_key(base, mapping_key)))
    terminal_key = objects(terminal.next_command())[0x83]
    private = pace.generate_private_key(domain, chip_random)
    chip_key = pace.public_key(domain, private)
    keys = pace.session_keys(pace.shared_secret(domain, private, terminal_key), cipher, bits)
    answer(tlv.encode_tlv(0x84, chip_key))
    terminal.next_command()
    final = tlv.encode_tlv(0x86, pace.authentication_token(protocol, keys, domain, terminal_key))
    if protocol.mapping is Mapping.CHIP_AUTHENTICATION:
        data = pace.chip_authentication_data(curve, static_key, mapping_key)
        final += tlv.encode_tlv(0x8A, pace.encrypt_chip_authentication_data(keys, data))
    answer(final)
    _ = terminal.result
    return answers


def _pace_case(label: str, info: PaceInfo, floor_us: float | None) -> Case:
    answers = _pace_answers(info)

    def full_pace() -> None:
        terminal = PaceTerminal(MRZ, info, random=FixedRandom(PACE_SEED))
        for response in answers:
            terminal.next_command()
            terminal.receive_response(response)
        _ = terminal.result

    return Case("PACE, full terminal side (AES-128, MRZ)", label, full_pace, floor_us=floor_us)


def pace_cases() -> list[Case]:
    """A full terminal-side PACE for each ECDH mapping on brainpoolP256r1 and P-384."""
    rows = []
    for parameter_id, curve_name in ((13, "brainpoolP256r1"), (15, "P-384")):
        for label, oid in (
            ("GM", PaceOid.ECDH_GM_AES_CBC_CMAC_128),
            ("IM", PaceOid.ECDH_IM_AES_CBC_CMAC_128),
            ("CAM", PaceOid.ECDH_CAM_AES_CBC_CMAC_128),
        ):
            # Floor (issue 5): ECDH-GM on brainpoolP256r1 under 25 ms of CPU.
            floor = 25_000.0 if (label, parameter_id) == ("GM", 13) else None
            rows.append(
                _pace_case(f"ECDH-{label} {curve_name}", PaceInfo(oid, 2, parameter_id), floor)
            )
    return rows


# -- more rows go here (PACE: add a pace_cases() and list it in CASE_BUILDERS) --------

#: Every group of rows, in print order.
CASE_BUILDERS: list[Callable[[], list[Case]]] = [bac_cases, sm_cases, pace_cases]


def _measure(case: Case, repeat: int) -> float:
    """Best CPU microseconds per operation over ``repeat`` rounds (after one warm-up)."""
    case.run()
    calls = 1
    # Scale each round to at least ~50 ms of CPU so timer resolution does not matter.
    while True:
        start = time.process_time_ns()
        for _ in range(calls):
            case.run()
        elapsed = time.process_time_ns() - start
        if elapsed >= 50_000_000 or calls >= 1 << 16:
            break
        calls *= 2
    best = elapsed
    for _ in range(repeat - 1):
        start = time.process_time_ns()
        for _ in range(calls):
            case.run()
        best = min(best, time.process_time_ns() - start)
    return best / 1000 / calls / case.operations


def main(argv: list[str] | None = None) -> int:
    """Print the table; with ``--check``, return 1 if a floor is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds per row (best is kept)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a floor is missed")
    args = parser.parse_args(argv)
    missed = []
    for build in CASE_BUILDERS:
        cases = build()
        results = [(case, _measure(case, args.repeat)) for case in cases]
        print(f"\n{cases[0].group}")
        base = results[0][1]
        for case, micros in results:
            floor = ""
            if case.floor_us is not None:
                ok = micros <= case.floor_us
                floor = f"  floor {case.floor_us:.0f} us: {'ok' if ok else 'MISSED'}"
                if not ok:
                    missed.append(f"{case.group} / {case.name}")
            print(f"  {case.name:<28} {micros:10.1f} us/op  {micros / base:5.2f}x{floor}")
    if missed:
        print("\nfloors missed: " + "; ".join(missed))
    return 1 if missed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())

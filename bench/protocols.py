"""Terminal-side CPU cost of the eID protocols: BAC, secure messaging (and PACE).

Run: ``.venv/bin/python bench/protocols.py`` (about ten seconds); ``--long``
or ``--repeat N`` for steadier numbers. The exit status is 1 when a floor is
missed (``--no-check`` only reports). When libeac3 (OpenPACE) is installed,
the last table times its terminal side of PACE-GM on every standardized
curve in the same run, through the ctypes binding of
``tests/nfc/pace/openpace.py``, and prints our terminal's time as a ratio to
it (floor: 2x on every curve; brainpoolP192r1, P224r1 and P320r1, which
cryptography lacks, run the own arithmetic of ``macnss_auth.nfc.ec``).

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
import functools
import importlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from macnss_auth.clock import SystemRandom
from macnss_auth.nfc import pace, tlv
from macnss_auth.nfc.apdu import CommandAPDU, ResponseAPDU
from macnss_auth.nfc.bac import BacProtocol, card_authenticate, derive_bac_keys
from macnss_auth.nfc.crypto import SymmetricCipher
from macnss_auth.nfc.domain_params import standardized
from macnss_auth.nfc.ec import Curve
from macnss_auth.nfc.eckeys import native_curve
from macnss_auth.nfc.mrz import MrzKey
from macnss_auth.nfc.pace import PaceTerminal
from macnss_auth.nfc.securityinfos import Mapping, PaceInfo, PaceOid
from macnss_auth.nfc.sm import CardSecureChannel, SecureChannel, SessionKeys
from macnss_auth.testing import FixedRandom

__all__ = [
    "CASE_BUILDERS",
    "Case",
    "bac_cases",
    "main",
    "openpace_comparison",
    "pace_cases",
    "sm_cases",
]

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


def _drive(
    terminal: PaceTerminal, info: PaceInfo, timed: Callable[[Callable[[], Any]], Any]
) -> list[bytes]:
    """Run ``terminal`` against a chip made of the pure functions; return the chip's answers.

    Every call into the terminal goes through ``timed``, the chip's work does not.
    """
    protocol, cipher, bits = info.protocol, info.protocol.cipher, info.protocol.key_bits
    curve = standardized(info.parameter_id or 0)
    if not isinstance(curve, Curve):
        raise TypeError("these PACE rows are ECDH")
    base = pace.base_domain(curve)
    chip_random = FixedRandom(7)
    static_key = 0xC0FFEE
    answers = [b"\x90\x00"]
    timed(terminal.next_command)
    timed(lambda: terminal.receive_response(answers[-1]))

    def objects(command: bytes) -> dict[int, bytes]:
        outer, _ = tlv.parse_one(CommandAPDU.from_bytes(command).data)
        return {item.tag: item.value for item in tlv.parse_all(outer.value)}

    def answer(data: bytes) -> None:
        answers.append(tlv.encode_tlv(0x7C, data) + b"\x90\x00")
        timed(lambda: terminal.receive_response(answers[-1]))

    timed(terminal.next_command)
    length = pace.integrated_mapping_lengths(cipher, bits)[0]
    nonce = chip_random.token_bytes(length)
    k_pi = pace.password_key(MRZ, cipher, bits)
    answer(tlv.encode_tlv(0x80, pace.encrypt_nonce(cipher, k_pi, nonce)))
    sent = objects(timed(terminal.next_command))
    mapping_key = pace.generate_private_key(base, chip_random)
    if protocol.mapping is Mapping.INTEGRATED:
        domain = pace.integrated_mapping(base, nonce, sent[0x81], cipher, bits)
        answer(tlv.encode_tlv(0x82, b""))
    else:
        shared = pace.mapping_shared_element(base, mapping_key, sent[0x81])
        domain = pace.generic_mapping(base, nonce, shared)
        answer(tlv.encode_tlv(0x82, pace.public_key(base, mapping_key)))
    terminal_key = objects(timed(terminal.next_command))[0x83]
    private = pace.generate_private_key(domain, chip_random)
    chip_key = pace.public_key(domain, private)
    keys = pace.session_keys(pace.shared_secret(domain, private, terminal_key), cipher, bits)
    answer(tlv.encode_tlv(0x84, chip_key))
    timed(terminal.next_command)
    final = tlv.encode_tlv(0x86, pace.authentication_token(protocol, keys, domain, terminal_key))
    if protocol.mapping is Mapping.CHIP_AUTHENTICATION:
        data = pace.chip_authentication_data(curve, static_key, mapping_key)
        final += tlv.encode_tlv(0x8A, pace.encrypt_chip_authentication_data(keys, data))
    answer(final)
    timed(lambda: terminal.result)
    return answers


def _pace_answers(info: PaceInfo) -> list[bytes]:
    """The chip's answers to a terminal seeded with PACE_SEED (chip side: the pure functions)."""
    terminal = PaceTerminal(MRZ, info, random=FixedRandom(PACE_SEED))
    return _drive(terminal, info, lambda call: call())


def _live_run(info: PaceInfo) -> int:
    """One PACE of our terminal with the system CSPRNG: its CPU nanoseconds (chip excluded)."""
    spent = 0

    def timed(call: Callable[[], Any]) -> Any:
        nonlocal spent
        start = time.process_time_ns()
        result = call()
        spent += time.process_time_ns() - start
        return result

    terminal = timed(lambda: PaceTerminal(MRZ, info, random=SystemRandom()))
    _drive(terminal, info, timed)
    return spent


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


# -- PACE against OpenPACE ------------------------------------------------------------

#: Every standardized curve (ICAO 9303-11 §9.5.1 ids 8-18).
PACE_CURVES = (
    (8, "P-192"),
    (9, "brainpoolP192r1"),
    (10, "P-224"),
    (11, "brainpoolP224r1"),
    (12, "P-256"),
    (13, "brainpoolP256r1"),
    (14, "brainpoolP320r1"),
    (15, "P-384"),
    (16, "brainpoolP384r1"),
    (17, "brainpoolP512r1"),
    (18, "P-521"),
)
#: Our terminal may take at most this multiple of OpenPACE's terminal CPU time (issue 14)
#: on every curve, the ones cryptography lacks (our own Python arithmetic) included.
OPENPACE_FLOOR = 2.0
CAN_DIGITS = b"123456"


def _openpace() -> tuple[Any, Any] | None:
    """The ctypes binding of tests/nfc/pace/openpace.py and libeac, or ``None``."""
    root = str(Path(__file__).resolve().parents[1])
    if root not in sys.path:
        sys.path.append(root)
    try:
        module = importlib.import_module("tests.nfc.pace.openpace")
    except ImportError:
        return None
    lib = module.load()
    return None if lib is None else (module, lib)


def _openpace_run(module: Any, lib: Any, info: PaceInfo) -> int:
    """One PACE-GM of libeac's terminal against libeac's chip: the terminal's CPU nanoseconds.

    Only libeac's terminal calls are timed (the chip, APDU and TLV coding are not).
    """
    chip = module.OpenPaceChip(lib, info, CAN_DIGITS, module.PACE_CAN)
    spent = 0

    def timed(call: Callable[[], Any]) -> Any:
        nonlocal spent
        start = time.process_time_ns()
        result = call()
        spent += time.process_time_ns() - start
        return result

    def exchange(objects: bytes, *, last: bool) -> dict[int, bytes]:
        command = CommandAPDU(
            0x00 if last else 0x10, 0x86, 0, 0, data=tlv.encode_tlv(0x7C, objects), ne=256
        )
        response = ResponseAPDU.from_bytes(chip.transceive(command.to_bytes()))
        if not response.ok:
            raise RuntimeError(f"OpenPACE chip refused: {response.sw:04X}")
        outer, _ = tlv.parse_one(response.data)
        return {item.tag: item.value for item in tlv.parse_all(outer.value)}

    ctx = timed(lambda: lib.context(module.card_access(info)))
    sec = timed(lambda: lib.secret(CAN_DIGITS, module.PACE_CAN))
    try:
        chip.transceive(CommandAPDU(0x00, 0x22, 0xC1, 0xA4, data=b"").to_bytes())
        objects = exchange(b"", last=False)
        timed(lambda: lib.call("PACE_STEP2_dec_nonce", ctx, sec, objects[0x80]))
        mine = timed(lambda: lib.take(lib.eac.PACE_STEP3A_generate_mapping_data(ctx)))
        objects = exchange(tlv.encode_tlv(0x81, mine), last=False)
        timed(lambda: lib.call("PACE_STEP3A_map_generator", ctx, objects[0x82]))
        public = timed(lambda: lib.take(lib.eac.PACE_STEP3B_generate_ephemeral_key(ctx)))
        chip_public = exchange(tlv.encode_tlv(0x83, public), last=False)[0x84]
        timed(lambda: lib.call("PACE_STEP3B_compute_shared_secret", ctx, chip_public))
        timed(lambda: lib.call("PACE_STEP3C_derive_keys", ctx))
        token = timed(
            lambda: lib.take(
                lib.invoke("PACE_STEP3D_compute_authentication_token", ctx, chip_public)
            )
        )
        answer = exchange(tlv.encode_tlv(0x85, token), last=True)[0x86]
        verify = "PACE_STEP3D_verify_authentication_token"
        if timed(lambda: lib.invoke(verify, ctx, answer)) != 1:
            raise RuntimeError("OpenPACE terminal rejected the chip's token")
    finally:
        timed(lambda: lib.eac.PACE_SEC_clear_free(sec))
        timed(lambda: lib.eac.EAC_CTX_clear_free(ctx))
        chip.close()
    return spent


def _timed_us(run: Callable[[], int], repeat: int) -> float:
    """Best-of-``repeat`` mean of the nanoseconds ``run`` reports, in microseconds."""
    run()
    runs = 1
    while True:
        total = sum(run() for _ in range(runs))
        if total >= 50_000_000 or runs >= 256:
            break
        runs *= 2
    best = total
    for _ in range(repeat - 1):
        best = min(best, sum(run() for _ in range(runs)))
    return best / 1000 / runs


def openpace_comparison(repeat: int) -> list[str]:
    """Print ECDH-GM terminal CPU per curve, ours and OpenPACE's; return the missed floors."""
    found = _openpace()
    title = "PACE ECDH-GM terminal (AES-128): ours vs OpenPACE (libeac) in this run"
    if found is None:
        print(f"\n{title}\n  libeac3 not installed (Debian: libeac3): OpenPACE rows skipped")
        return []
    module, lib = found
    print(f"\n{title}")
    missed = []
    for parameter_id, name in PACE_CURVES:
        info = PaceInfo(PaceOid.ECDH_GM_AES_CBC_CMAC_128, 2, parameter_id)
        # Both live, both with their CSPRNG, both timed on the terminal's calls only.
        ours = _timed_us(functools.partial(_live_run, info), repeat)
        theirs = _timed_us(functools.partial(_openpace_run, module, lib, info), repeat)
        ratio = ours / theirs
        curve = standardized(parameter_id)
        own = isinstance(curve, Curve) and native_curve(curve) is None
        ok = ratio <= OPENPACE_FLOOR
        verdict = f"floor {OPENPACE_FLOOR:.1f}x: {'ok' if ok else 'MISSED'}"
        if own:
            verdict += " (own arithmetic)"
        if not ok:
            missed.append(f"PACE vs OpenPACE / {name}")
        print(
            f"  {name:<16} ours {ours:9.1f} us  OpenPACE {theirs:8.1f} us  {ratio:5.2f}x  {verdict}"
        )
    return missed


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
    """Print the tables; return 1 if a floor is missed (unless ``--no-check``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds per row (best is kept)")
    parser.add_argument("--long", action="store_true", help="10 rounds per row (steadier)")
    parser.add_argument("--no-check", action="store_true", help="report missed floors but exit 0")
    parser.add_argument(
        "--openpace-only", action="store_true", help="only the comparison with OpenPACE"
    )
    args = parser.parse_args(argv)
    repeat = 10 if args.long else args.repeat
    missed = []
    for build in [] if args.openpace_only else CASE_BUILDERS:
        cases = build()
        results = [(case, _measure(case, repeat)) for case in cases]
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
    missed += openpace_comparison(repeat)
    if missed:
        print("\nfloors missed: " + "; ".join(missed))
    return 1 if missed and not args.no_check else 0


if __name__ == "__main__":
    sys.exit(main())

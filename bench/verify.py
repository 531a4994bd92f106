"""Bundle verifications per second: warm trust store vs cold caches, RSA and ECDSA.

Run: ``.venv/bin/python bench/verify.py [--seconds 3 | --long]`` (1 s per row by
default); exits 1 when a warm row is below the floor. Rates are per CPU
second of the (single-threaded) process, so they are the one-core figure even
when other work shares the machine; pin with ``taskset -c 0`` to be sure.
Each verification decodes the JSON bundle, parses EF.SOD, checks the SOD
signature, validates the document signer against the trust store (with a
CRL), hashes every data group and checks the Active Authentication signature
over the server's nonce.

* warm: the trust store has validated this document signer before (the
  certificate-signature check and the certificate parse are cached), as on a
  server that sees many documents from the same few document signers.
* cold: every cache is cleared before each verification (CSCA signature
  check, certificate, key, name and DG14 parsing), the cost of a first document.

The 500/s floor is checked on every row, brainpoolP256r1 included (the
Moroccan-style card uses it), although OpenSSL verifies brainpool signatures
about 4x slower than P-256 (no optimised implementation) and each bundle
needs two (SOD, AA).

A second table times one ECDSA verification (``pki.verify_signature`` on a
plain ``r || s`` signature over 8 bytes, SHA-256) and one Chip
Authentication key agreement (``EcPrivateKey.exchange``, the terminal's
secret-scalar side) per curve, with the path the library takes
(``cryptography`` or ``own`` arithmetic), and the ratio to P-256 through
cryptography measured in the same run. ``own`` rows for P-224 force the
fallback a build without that curve would take.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable

from macnss_auth.nfc import eckeys
from macnss_auth.nfc.domain_params import curve_by_name
from macnss_auth.nfc.eckeys import EcPrivateKey, ecdsa_sign
from macnss_auth.nfc.pki import (
    HashAlgorithm,
    SignatureKind,
    SignatureScheme,
    TrustStore,
    verify_signature,
)
from macnss_auth.nfc.verify import clear_caches, encode_bundle, verify_bundle
from macnss_auth.testing import FixedClock
from macnss_auth.testing.pki import KeyType, TestPki

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
NONCE = bytes.fromhex("0102030405060708")
FLOOR = 500.0


def rate(work: Callable[[], None], seconds: float) -> float:
    """Verifications per CPU second of this process (robust on a busy machine)."""
    work()
    count = 0
    start = time.process_time()
    while (elapsed := time.process_time() - start) < seconds:
        work()
        count += 1
    return count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="per row")
    parser.add_argument("--long", action="store_true", help="3 seconds per row")
    args = parser.parse_args()
    if args.long:
        args.seconds = 3.0
    clock = FixedClock(NOW)
    print(f"{'document':<36} {'warm /s':>9} {'cold /s':>9} {'warm/cold':>10}")
    worst = float("inf")  # over the RSA and P-256 rows; brainpool is reported, see the docs
    cases = [
        ("rsa", "secp256r1", "RSA-2048 DS, RSA-1024 AA"),
        ("ec", "secp256r1", "ECDSA P-256 DS and AA"),
        ("ec", "brainpoolP256r1", "ECDSA brainpoolP256r1 DS and AA"),
    ]
    for key_type, curve, label in cases:
        kind: KeyType = "rsa" if key_type == "rsa" else "ec"
        pki = TestPki.create(now=NOW, key_type=kind, curve=curve)
        document = pki.issue_document(aa_key_type=kind, aa_curve=curve)
        store = TrustStore()
        store.load_master_list(pki.master_list(), trust_as_is=True)
        store.add_crl(pki.crl())
        bundle = encode_bundle(
            document.data_groups,
            document.sod,
            aa_signature=document.sign_active_authentication(NONCE),
        )

        def warm(store: TrustStore = store, bundle: str = bundle) -> None:
            verify_bundle(bundle, store, NONCE, clock=clock)

        def cold(store: TrustStore = store, bundle: str = bundle) -> None:
            store.clear_cache()
            clear_caches()
            verify_bundle(bundle, store, NONCE, clock=clock)

        warm_rate = rate(warm, args.seconds)
        cold_rate = rate(cold, args.seconds)
        worst = min(worst, warm_rate)
        print(f"{label:<36} {warm_rate:>9.0f} {cold_rate:>9.0f} {warm_rate / cold_rate:>9.1f}x")
    verdict = "meets" if worst >= FLOOR else "BELOW"
    print(f"warm floor {FLOOR:.0f}/s on one core: {verdict} (slowest warm: {worst:.0f}/s)")
    print()
    primitives(args.seconds)
    return 0 if worst >= FLOOR else 1


_CURVE_ROWS = (
    ("secp256r1", False),
    ("brainpoolP256r1", False),
    ("secp224r1", False),
    ("secp224r1", True),
    ("brainpoolP192r1", False),
    ("brainpoolP224r1", False),
    ("brainpoolP320r1", False),
)


def primitives(seconds: float) -> None:
    """ECDSA verifications and CA key agreements per CPU second, per curve and path."""
    scheme = SignatureScheme(SignatureKind.ECDSA_PLAIN, HashAlgorithm.SHA256)
    native = eckeys.native_curve
    header = f"{'ECDSA verify/s':>15} {'x P-256':>8} {'ECDH/s':>9} {'x P-256':>8}"
    print(f"{'curve':<18} {'path':<12} {header}")
    base: tuple[float, float] | None = None
    for name, force_own in _CURVE_ROWS:
        curve = curve_by_name(name)
        eckeys.native_curve = (lambda _c: None) if force_own else native  # type: ignore[assignment]
        try:
            key = EcPrivateKey.generate(curve)
            public = key.public_key()
            peer = EcPrivateKey.generate(curve).public_key()
            r, s = ecdsa_sign(key, NONCE, HashAlgorithm.SHA256.new())
            size = curve.order_length
            signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
            path = "own" if eckeys.native_curve(curve) is None else "cryptography"

            def check(public: eckeys.EcPublicKey = public, signature: bytes = signature) -> None:
                verify_signature(public, scheme, NONCE, signature)

            def agree(key: EcPrivateKey = key, peer: eckeys.EcPublicKey = peer) -> None:
                key.exchange(peer)

            verify_rate = rate(check, seconds / 2)
            agree_rate = rate(agree, seconds / 2)
        finally:
            eckeys.native_curve = native
        if base is None:
            base = (verify_rate, agree_rate)
        print(
            f"{name:<18} {path:<12} {verify_rate:>15.0f} {verify_rate / base[0]:>8.3f}"
            f" {agree_rate:>9.0f} {agree_rate / base[1]:>8.3f}"
        )


if __name__ == "__main__":
    raise SystemExit(main())

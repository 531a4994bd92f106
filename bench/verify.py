"""Bundle verifications per second: warm trust store vs cold caches, RSA and ECDSA.

Run: ``.venv/bin/python bench/verify.py [--seconds 3]``. Rates are per CPU
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
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable

from macnss_auth.nfc.pki import TrustStore
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
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    clock = FixedClock(NOW)
    print(f"{'document':<36} {'warm /s':>9} {'cold /s':>9}")
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
        store.load_master_list(pki.master_list())
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
        print(f"{label:<36} {warm_rate:>9.0f} {cold_rate:>9.0f}")
    verdict = "meets" if worst >= FLOOR else "BELOW"
    print(f"warm floor {FLOOR:.0f}/s on one core: {verdict} (slowest warm: {worst:.0f}/s)")
    return 0 if worst >= FLOOR else 1


if __name__ == "__main__":
    raise SystemExit(main())

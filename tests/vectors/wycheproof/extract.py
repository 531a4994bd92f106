"""Rebuild the compact vector files here from a Wycheproof checkout.

Usage: ``python extract.py /path/to/wycheproof`` (a checkout of
https://github.com/C2SP/wycheproof; the files here came from commit
dac1dd4729fd1f8dd9e1e9f3dce51d783da6c166). Only the fields the tests read are
kept; ECDH files keep a documented subset (see README.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ECDSA = (
    "ecdsa_brainpoolP224r1_sha224_p1363_test.json",
    "ecdsa_brainpoolP224r1_sha224_test.json",
    "ecdsa_brainpoolP320r1_sha384_p1363_test.json",
    "ecdsa_secp192r1_sha256_p1363_test.json",
    "ecdsa_secp224r1_sha224_p1363_test.json",
)
ECDH = ("ecdh_brainpoolP224r1_test.json", "ecdh_brainpoolP320r1_test.json")
# ECDH: every invalid vector and every valid one except the 400 "EdgeCaseDoubling"
# variations (the first 40 kept), and the first 20 of the 222 "InvalidAsn" ones.
KEEP_FIRST = {"EdgeCaseDoubling": 40, "InvalidAsn": 20}


def _ecdsa(data: dict[str, Any], name: str) -> dict[str, Any]:
    fields = ("tcId", "msg", "sig", "result", "flags")
    groups = [
        {
            "curve": group["publicKey"]["curve"],
            "sha": group["sha"],
            "public": group["publicKey"]["uncompressed"],
            "tests": [[t[field] for field in fields] for t in group["tests"]],
        }
        for group in data["testGroups"]
    ]
    return {"file": f"testvectors_v1/{name}", "type": data["schema"], "groups": groups}


def _ecdh(data: dict[str, Any], name: str) -> dict[str, Any]:
    fields = ("tcId", "public", "private", "shared", "result", "flags")
    seen: dict[str, int] = {}
    tests = []
    for group in data["testGroups"]:
        for t in group["tests"]:
            flag = t["flags"][0] if t["flags"] else ""
            seen[flag] = seen.get(flag, 0) + 1
            if flag in KEEP_FIRST and seen[flag] > KEEP_FIRST[flag]:
                continue
            tests.append([t[field] for field in fields])
    return {
        "file": f"testvectors_v1/{name}",
        "curve": data["testGroups"][0]["curve"],
        "tests": tests,
    }


def main(checkout: str) -> None:
    root = Path(checkout) / "testvectors_v1"
    for name in ECDSA + ECDH:
        data = json.loads((root / name).read_text("utf-8"))
        compact = _ecdsa(data, name) if name.startswith("ecdsa") else _ecdh(data, name)
        (HERE / name).write_text(json.dumps(compact, separators=(",", ":")) + "\n", "utf-8")


if __name__ == "__main__":
    main(sys.argv[1])

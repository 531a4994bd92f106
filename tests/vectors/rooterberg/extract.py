"""Rebuild the compact brainpoolP192r1 vector files here from a Rooterberg checkout.

Usage: ``python extract.py /path/to/Rooterberg`` (a checkout of
https://github.com/bleichenbacher-daniel/Rooterberg; the files here came from
commit 85c1ae75aa04869ab1a90b9c9757bf1e37ea680b). The output uses the same
compact layout as ``tests/vectors/wycheproof/`` so one test reads both.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
ECDSA = ("ecdsa/ecdsa_brainpool_p192r1_sha_224_p1363.json",)
ECDH = ("ecdh/ecdh_uncompressed_brainpool_p192r1.json",)


def _result(test: dict[str, Any]) -> str:
    return "valid" if test["valid"] else "invalid"


def _ecdsa(data: dict[str, Any], name: str) -> dict[str, Any]:
    groups: dict[str, dict[str, Any]] = {}
    for t in data["tests"]:
        group = groups.setdefault(
            t["publicKeyUncompressed"],
            {
                "curve": data["algorithm"]["curve"],
                "sha": data["algorithm"]["sha"],
                "public": t["publicKeyUncompressed"],
                "tests": [],
            },
        )
        group["tests"].append([t["tcId"], t["msg"], t["sig"], _result(t), t["flags"]])
    return {
        "file": f"test_vectors/{name}",
        "type": data["testType"],
        "groups": list(groups.values()),
    }


def _ecdh(data: dict[str, Any], name: str) -> dict[str, Any]:
    tests = [
        [
            t["tcId"],
            t["publicKeyUncompressed"],
            t["privateKey"],
            t["shared"],
            _result(t),
            t["flags"],
        ]
        for t in data["tests"]
    ]
    return {"file": f"test_vectors/{name}", "curve": data["algorithm"]["curve"], "tests": tests}


def main(checkout: str) -> None:
    root = Path(checkout) / "test_vectors"
    for name in ECDSA + ECDH:
        data = json.loads((root / name).read_text("utf-8"))
        compact = _ecdsa(data, name) if name.startswith("ecdsa") else _ecdh(data, name)
        target = HERE / Path(name).name
        target.write_text(json.dumps(compact, separators=(",", ":")) + "\n", "utf-8")


if __name__ == "__main__":
    main(sys.argv[1])

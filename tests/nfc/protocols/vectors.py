"""One loader for the JSON vectors under ``tests/vectors/<source>/``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2] / "vectors"
VECTORS = ROOT / "icao9303"


def load(name: str, *, source: str = "icao9303") -> dict[str, Any]:
    """The parsed JSON vector file ``name`` from ``tests/vectors/<source>/``."""
    with (ROOT / source / name).open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def named(entries: list[dict[str, str]], name: str, *, occurrence: int = 0) -> bytes:
    """The value of the ``occurrence``-th entry called ``name`` (hex, or ASCII as bytes)."""
    found = [e for e in entries if e.get("name") == name]
    entry = found[occurrence]
    if "hex" in entry:
        return bytes.fromhex(entry["hex"])
    return entry["ascii"].encode("ascii")


def appendix_d() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The BAC entries and the secure-messaging entries of ICAO 9303-11 Appendix D."""
    data = load("bac_sm_9303p11_appendixD.json")
    return data["bac"], data["secure_messaging"]

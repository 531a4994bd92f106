"""Loader for the RFC 4226 / RFC 6238 vectors in ``tests/vectors/rfc`` (see its README)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

__all__ = ["HotpVector", "TotpVector", "hotp_vectors", "totp_vectors"]

_DIR = Path(__file__).resolve().parent.parent / "vectors" / "rfc"


@attrs.frozen
class HotpVector:
    """One row of RFC 4226 Appendix D."""

    secret: bytes
    counter: int
    code: str


@attrs.frozen
class TotpVector:
    """One row of RFC 6238 Appendix B."""

    secret: bytes
    algorithm: str
    time: int
    step: int
    code: str


def _load(name: str) -> Any:
    return json.loads((_DIR / name).read_text(encoding="utf-8"))


def hotp_vectors() -> list[HotpVector]:
    """The ten HOTP values (6 digits, SHA1)."""
    data = _load("rfc4226-hotp.json")
    secret = bytes.fromhex(data["secret_hex"])
    return [HotpVector(secret, int(v["count"]), str(v["hotp_6"])) for v in data["vectors"]]


def totp_vectors() -> list[TotpVector]:
    """The eighteen TOTP values (8 digits, 30 s), with the seed of each algorithm."""
    data = _load("rfc6238-totp.json")
    seeds = {mode: bytes.fromhex(seed["hex"]) for mode, seed in data["seeds"].items()}
    return [
        TotpVector(
            secret=seeds[v["mode"]],
            algorithm=str(v["mode"]),
            time=int(v["time"]),
            step=int(v["T_hex"], 16),
            code=str(v["totp"]),
        )
        for v in data["vectors"]
    ]

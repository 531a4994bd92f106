"""What the library's own tests use, for yours.

* Deterministic time and randomness: :class:`FixedClock`, :class:`FixedRandom`,
  :class:`ScriptedRandom` (to replay published worked examples).
* The virtual eID card: :func:`issue_card` (profiles ``passport-bac``, ``cnie``,
  ``pace-im``, ``pace-cam``, ``legacy-dh``), :class:`VirtualCard`,
  :func:`save_card` / :func:`load_card`, :class:`FaultPlan`, and ways to serve
  it: :class:`MemoryTransport` (in process), :class:`UdpCardServer` (nfcpy's
  udp link), :class:`VpcdCardClient` (pcscd's vpcd driver).
* A delivery channel that keeps what it "sends": :class:`CapturingChannel`, and
  :func:`find_code` to pick the code out of a message.
* ``macnss_auth.testing.contract``: the tests every Authenticator must pass (needs pytest).
* ``macnss_auth.testing.store_contract``: the tests every Store must pass, for
  your own backend (needs pytest; see ``docs/stores.md``).
* ``macnss_auth.testing.races``: calls released together by a barrier, in
  threads or in worker processes, each outcome handed back.
* ``macnss_auth.testing.pki``: a test CSCA, document signers, CRLs and master lists.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from macnss_auth.testing.clock import FixedClock, FixedRandom, ScriptedRandom

if TYPE_CHECKING:
    from macnss_auth.delivery import CapturingChannel, find_code
    from macnss_auth.nfc.card import (
        FaultPlan,
        VirtualCard,
        clone_card,
        forge_card,
        issue_card,
        load_card,
        save_card,
    )
    from macnss_auth.nfc.serve import MemoryTransport, UdpCardServer, VpcdCardClient

# The card and its servers are heavy (PKI, PACE, sockets): their names load on
# first use, so importing the clock helpers stays cheap.
_LAZY = {
    "CapturingChannel": "macnss_auth.delivery",
    "find_code": "macnss_auth.delivery",
    "FaultPlan": "macnss_auth.nfc.card",
    "VirtualCard": "macnss_auth.nfc.card",
    "clone_card": "macnss_auth.nfc.card",
    "forge_card": "macnss_auth.nfc.card",
    "issue_card": "macnss_auth.nfc.card",
    "load_card": "macnss_auth.nfc.card",
    "save_card": "macnss_auth.nfc.card",
    "MemoryTransport": "macnss_auth.nfc.serve",
    "UdpCardServer": "macnss_auth.nfc.serve",
    "VpcdCardClient": "macnss_auth.nfc.serve",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CapturingChannel",
    "FaultPlan",
    "FixedClock",
    "FixedRandom",
    "MemoryTransport",
    "ScriptedRandom",
    "UdpCardServer",
    "VirtualCard",
    "VpcdCardClient",
    "clone_card",
    "find_code",
    "forge_card",
    "issue_card",
    "load_card",
    "save_card",
]

"""PACE (Password Authenticated Connection Establishment), ICAO 9303-11 §4.4.

* :class:`PaceTerminal`: the terminal side as a sans-I/O state machine; run it
  with :func:`macnss_auth.nfc.protocol.run` over any transport.
* :mod:`macnss_auth.nfc.pace.pin`: PIN and PUK (resume a suspended PIN,
  unblock with the PUK, change the PIN).
* :mod:`macnss_auth.nfc.pace.primitives`: the pure mathematics (nonce
  encryption, Generic/Integrated/Chip Authentication Mapping, key agreement,
  session keys, authentication tokens) that the virtual card reuses.

See ``docs/pace.md``.
"""

from macnss_auth.nfc.pace import primitives
from macnss_auth.nfc.pace.pin import (
    SecureMessagingTransport,
    reset_retry_counter_command,
    resume_pin,
    unblock_pin,
)
from macnss_auth.nfc.pace.primitives import *  # noqa: F403 (listed by primitives.__all__)
from macnss_auth.nfc.pace.terminal import (
    PaceResult,
    PaceState,
    PaceTerminal,
    run_pace,
    select_pace_info,
)

__all__ = [
    "PaceResult",
    "PaceState",
    "PaceTerminal",
    "SecureMessagingTransport",
    "reset_retry_counter_command",
    "resume_pin",
    "run_pace",
    "select_pace_info",
    "unblock_pin",
]
# Every primitive but the helpers that only the two protocol sides share.
__all__ += [
    name
    for name in primitives.__all__
    if name not in {"generic_mapping_public_key", "oid_contents", "same_public_key"}
]

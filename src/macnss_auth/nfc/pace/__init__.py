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

from macnss_auth.nfc.pace.pin import (
    SecureMessagingTransport,
    reset_retry_counter_command,
    resume_pin,
    unblock_pin,
)
from macnss_auth.nfc.pace.primitives import (
    DhDomain,
    Domain,
    EcDomain,
    PacePassword,
    authentication_token,
    base_domain,
    chip_authentication_data,
    decode_public_key,
    decrypt_chip_authentication_data,
    decrypt_nonce,
    encrypt_chip_authentication_data,
    encrypt_nonce,
    generate_private_key,
    generic_mapping,
    integrated_mapping,
    integrated_mapping_lengths,
    integrated_mapping_point,
    mapping_shared_element,
    password_key,
    password_reference,
    pseudo_random_number,
    public_key,
    public_key_data_object,
    session_key_candidates,
    session_keys,
    shared_secret,
    strip_shared_secret,
    token_matches,
    verify_authentication_token,
    verify_chip_authentication_mapping,
)
from macnss_auth.nfc.pace.terminal import (
    PaceResult,
    PaceState,
    PaceTerminal,
    run_pace,
    select_pace_info,
)

__all__ = [
    "DhDomain",
    "Domain",
    "EcDomain",
    "PacePassword",
    "PaceResult",
    "PaceState",
    "PaceTerminal",
    "SecureMessagingTransport",
    "authentication_token",
    "base_domain",
    "chip_authentication_data",
    "decode_public_key",
    "decrypt_chip_authentication_data",
    "decrypt_nonce",
    "encrypt_chip_authentication_data",
    "encrypt_nonce",
    "generate_private_key",
    "generic_mapping",
    "integrated_mapping",
    "integrated_mapping_lengths",
    "integrated_mapping_point",
    "mapping_shared_element",
    "password_key",
    "password_reference",
    "pseudo_random_number",
    "public_key",
    "public_key_data_object",
    "reset_retry_counter_command",
    "resume_pin",
    "run_pace",
    "select_pace_info",
    "session_key_candidates",
    "session_keys",
    "shared_secret",
    "strip_shared_secret",
    "token_matches",
    "unblock_pin",
    "verify_authentication_token",
    "verify_chip_authentication_mapping",
]

"""An attacker against passkeys: probing who has them, ceremonies run from other origins."""

from __future__ import annotations

import json
from typing import Any

import pytest

from macnss_auth.audit import MemoryAuditLog
from macnss_auth.errors import AuthenticationFailed, ConfigurationError, MalformedInput, Reason
from macnss_auth.passkey import PasskeyAuthenticator
from macnss_auth.secret import Secret
from macnss_auth.store import Keyring, MemoryStore
from macnss_auth.testing import FixedClock
from tests.passkey.helpers import NOW, ORIGIN, RP_ID, Setup

KEY = Secret(b"decoy-key-for-these-tests-0123456789")


def setup_with(**options: Any) -> Setup:
    clock = FixedClock.at(NOW)
    store = MemoryStore(keyring=Keyring.generate())
    audit = MemoryAuditLog()
    passkeys = PasskeyAuthenticator(
        store=store, audit=audit, rp_id=RP_ID, origins=[ORIGIN], clock=clock, **options
    )
    return Setup(passkeys, store, audit, clock)


def allowed(setup: Setup, subject: str) -> list[dict[str, Any]]:
    options = json.loads(setup.passkeys.begin(subject).data["options"])
    found: list[dict[str, Any]] = options.get("allowCredentials", [])
    return found


def test_a_subject_without_passkeys_gets_stable_decoys() -> None:
    setup = setup_with(decoy_key=KEY)
    setup.register("amina", setup.device())
    real = allowed(setup, "amina")
    decoys = allowed(setup, "nobody")
    assert len(real) == 1
    # Same shape as a real list, and the same on every request (a fresh list each
    # time would give the decoys away).
    assert 1 <= len(decoys) <= 2
    assert set(decoys[0]) == set(real[0])
    assert allowed(setup, "nobody") == decoys
    assert allowed(setup, "somebody-else") != decoys
    # Every instance of the service with the same key tells the same story.
    assert allowed(setup_with(decoy_key=KEY), "nobody") == decoys


def test_decoy_lengths_and_transports_look_like_real_ones() -> None:
    setup = setup_with(decoy_key=KEY)
    seen = [c for n in range(200) for c in allowed(setup, f"person-{n}")]
    lengths = {len(c["id"]) for c in seen}
    assert len(lengths) >= 3  # not one telltale length
    assert all(22 <= len(c["id"]) <= 87 for c in seen)  # 16 to 65 bytes in base64url
    assert 200 < len(seen) < 320  # mostly one credential, sometimes two
    assert {t for c in seen for t in c["transports"]} <= {"internal", "hybrid", "usb", "nfc"}


def test_a_decoy_answers_like_an_unknown_credential() -> None:
    setup = setup_with(decoy_key=KEY)
    setup.register("amina", setup.device())
    challenge = setup.passkeys.begin("nobody")
    stranger = setup.device()
    setup.register("someone-else", stranger)
    options = json.loads(challenge.data["options"]) | {"allowCredentials": []}
    with pytest.raises(AuthenticationFailed) as refused:
        setup.passkeys.verify(challenge, stranger.get(options))
    assert refused.value.reason is Reason.UNKNOWN_CREDENTIAL


def test_a_removed_last_passkey_leaves_decoys_not_an_empty_list() -> None:
    setup = setup_with(decoy_key=KEY)
    phone = setup.device()
    credential = setup.register("amina", phone)
    assert setup.passkeys.remove_credential("amina", credential.credential_id)
    assert allowed(setup, "amina")


def test_without_listing_nobody_gets_a_list() -> None:
    setup = setup_with(list_credentials=False)
    setup.register("amina", setup.device())
    assert allowed(setup, "amina") == allowed(setup, "nobody") == []


def test_a_short_decoy_key_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        setup_with(decoy_key=Secret(b"short"))


@pytest.mark.parametrize(
    "origin",
    [
        "https://localhost:8443",  # the scheme
        "http://localhost:8444",  # the port
        "http://localhost",  # the default port
        "http://sub.localhost:8443",  # a subdomain of the RP id
        "http://LOCALHOST:8443",  # case: browsers serialize origins in lower case
        "http://localhost:8443/",  # a trailing slash
        "null",  # an opaque origin (sandboxed frame, data: URL)
    ],
)
def test_only_the_exact_origin_is_accepted(origin: str) -> None:
    # The RP id lets any subdomain run a ceremony for it in the browser; the server
    # accepts the origin only as configured, byte for byte.
    setup = setup_with()
    phone = setup.device()
    setup.register("amina", phone)
    for subject in ("amina", None):
        challenge = setup.passkeys.begin(subject)
        with pytest.raises(AuthenticationFailed) as refused:
            setup.passkeys.verify(challenge, phone.get(challenge.data["options"], origin=origin))
        assert refused.value.reason is Reason.ORIGIN_MISMATCH


class CountingStore:
    """Passes every call on and counts them by name: the round trips a database sees."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return target(*args, **kwargs)

        return call


def test_decoys_cost_the_store_calls_real_credentials_cost() -> None:
    counting = CountingStore(MemoryStore(keyring=Keyring.generate()))
    passkeys = PasskeyAuthenticator(
        store=counting, audit=MemoryAuditLog(), rp_id=RP_ID, origins=[ORIGIN],
        clock=FixedClock.at(NOW), decoy_key=KEY,
    )  # fmt: skip
    setup = Setup(passkeys, counting, MemoryAuditLog(), FixedClock.at(NOW))
    setup.register("amina", setup.device())
    # A subject that gets one decoy, as amina has one passkey.
    one = next(n for n in (f"person-{i}" for i in range(50)) if len(allowed(setup, n)) == 1)
    traces = {}
    for subject in ("amina", one):
        counting.calls.clear()
        assert len(allowed(setup, subject)) == 1
        traces[subject] = list(counting.calls)
    assert traces["amina"] == traces[one]


def test_odd_subjects_get_decoys_or_the_stores_typed_refusal() -> None:
    # The library takes any str as a subject (the web layer is stricter). Text the
    # store cannot key on is its MalformedInput, as before decoys; never a UnicodeError
    # from deriving a decoy for a lone surrogate.
    setup = setup_with(decoy_key=KEY)
    for subject in ("x" * 10_000, "مستخدم", "a b\tc"):
        assert allowed(setup, subject)
    for subject in ("a\ud800", "\x00"):
        with pytest.raises(MalformedInput):
            setup.passkeys.begin(subject)

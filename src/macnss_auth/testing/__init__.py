"""What the library's own tests use, for yours: fixed clock, deterministic randomness.

The virtual eID card, a capturing delivery channel and the reusable
Authenticator contract tests live in submodules (``macnss_auth.testing.contract``
needs pytest).
"""

from macnss_auth.testing.clock import FixedClock, FixedRandom, ScriptedRandom

__all__ = ["FixedClock", "FixedRandom", "ScriptedRandom"]

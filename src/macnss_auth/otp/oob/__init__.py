"""One-time codes sent by SMS or e-mail ("out-of-band" codes).

The package, by job: :mod:`.codes` (code policy, generation, reading typed
input back), :mod:`.dispatch` (how deliveries run), :mod:`.limits` (resend
cooldowns and caps, decoy destinations) and :mod:`.authenticator` (the
SMS and e-mail authenticators). Everything is re-exported here, so
``from macnss_auth.otp.oob import X`` works as it did when this was one module.

Theory of operation
-------------------
``begin(subject)`` draws a code from the injected CSPRNG (default: 6 digits,
uniform by rejection sampling), stores only
``HMAC-SHA256(pepper, method || purpose || challenge id || code)`` in a
:class:`~macnss_auth.store.ChallengeRecord` whose ``slot`` is one per subject
and channel (creating it retires the previous code: a resend replaces it),
sends the code through a :class:`~macnss_auth.delivery.DeliveryChannel`, and
returns a :class:`~macnss_auth.Challenge` with the expiry and a masked
destination. The pepper is an application secret kept out of the store, so a
stolen database does not give the codes away (a 6-digit code is otherwise
trivial to brute-force from its hash). Lifetimes default to 5 minutes and
are never allowed above 10 (NIST SP 800-63B §5.1.3.2).

``verify(challenge, code)`` looks the record up by id only (the client's copy
of the challenge is never trusted), classifies it with the gate every
challenge-based method shares (:func:`macnss_auth.challenges.challenge_failure`),
counts the attempt in a :class:`~macnss_auth.throttle.FailureThrottle` per
subject (and per client),
compares keyed hashes in constant time, and on a match calls the store's
atomic ``consume_challenge``: of two service instances verifying the same
code at the same moment exactly one succeeds. A wrong code adds an attempt
atomically; after ``max_attempts`` wrong codes the challenge is burnt. Every
guess is also counted atomically *before* its comparison, so parallel
guesses at one challenge never get more than ``max_attempts`` comparisons. Every
failure raises with a distinct ``reason`` (for the audit log) but the same
``str(exc)`` (for the person), so a caller that shows the message reveals
nothing.

**Resends** are throttled per subject, per destination, per number prefix
or e-mail domain and in all (the SMS-pumping brake): see :mod:`.limits`.
A login is refused only by the subject's own limits; past a limit shared
with other people, ``begin`` answers as for a send and drops the message
(audited), since refusing would tell who is enrolled.

**Enumeration resistance.** ``begin`` for an unknown subject, or one without
a *confirmed* destination, does the same work: same checks and rate-limit
counters (against a decoy destination derived from the subject with the
pepper, so repeated calls show the same hint), same code generation, same
hashing, same store insert, same message rendering, and returns a challenge
of the same shape; only the delivery is replaced by nothing, and the stored
verifier is random bytes of the same length, which no code matches. A delivery to
nobody must cost what a real one costs, so delivery goes through a
:class:`Dispatcher`:

* :class:`BackgroundDispatcher` (the default) hands the delivery to a worker
  thread and returns at once, known subject or not: ``begin`` never waits for
  the SMTP server or the SMS gateway, so its duration cannot depend on
  whether anything is sent, and a slow or failing gateway does not slow the
  login page. Failures are handled in the worker (the code is burnt, the
  failure audited, the fallback channel tried).
* :class:`InlineDispatcher` delivers before ``begin`` returns and then pads
  ``begin`` to ``min_duration`` seconds; delivery failures are raised to the
  caller as :class:`CodeNotDelivered`. This suits the CLI and tests. It only
  hides timing if ``min_duration`` exceeds the slowest delivery, and a
  failure reveals that the subject had a destination, so public endpoints
  should use the background dispatcher.

We chose asynchronous delivery as the default because padding to a fixed
minimum either makes every login slow (the pad must exceed the worst-case
gateway latency, seconds) or leaks whenever the gateway is slower than the
pad, whereas handing off to a worker costs microseconds in both cases.

**Failed delivery** (after retries with backoff within the retry policy's
deadline) burns the code, so no valid code is left behind that might arrive
late or sit in a mail queue; the failure is audited; if a fallback channel is
configured and the subject has a confirmed destination for it, the same code
is sent there instead (SMS failed -> e-mail) and stays valid.
"""

from macnss_auth.otp.oob.authenticator import (
    GENERIC_FAILURE,
    EmailCodeAuthenticator,
    OutOfBandAuthenticator,
    SMSCodeAuthenticator,
)
from macnss_auth.otp.oob.codes import (
    DIGITS,
    SAFE_ALPHANUMERIC,
    CodePolicy,
    generate_code,
    normalize_oob_code,
)
from macnss_auth.otp.oob.dispatch import (
    BackgroundDispatcher,
    CodeNotDelivered,
    Dispatcher,
    InlineDispatcher,
)
from macnss_auth.otp.oob.limits import ResendPolicy

__all__ = [
    "DIGITS",
    "GENERIC_FAILURE",
    "SAFE_ALPHANUMERIC",
    "BackgroundDispatcher",
    "CodeNotDelivered",
    "CodePolicy",
    "Dispatcher",
    "EmailCodeAuthenticator",
    "InlineDispatcher",
    "OutOfBandAuthenticator",
    "ResendPolicy",
    "SMSCodeAuthenticator",
    "generate_code",
    "normalize_oob_code",
]

"""How often codes may be sent: cooldowns, daily caps, prefix and global caps, decoys.

**Resends** are throttled per subject and per destination (a cooldown that
doubles with each send, and a daily cap), and globally per destination across
subjects plus per number prefix or e-mail domain per hour: SMS pumping fraud
triggers thousands of messages to premium ranges through sign-up and login
forms, and these caps bound what it can cost. Login and enrollment codes
have separate cooldowns (logging in right after confirming a number is the
normal flow); prefix and global caps count both.

**Decoys.** A subject without a confirmed destination is counted against a
decoy destination derived from the subject with the pepper
(:func:`decoy_destination`), so repeated requests show the same hint and
make the same store calls as a real subject's.

**Quiet refusals.** A login is refused (``RateLimited``) only by the
subject's own limits, which an unknown subject meets alike. A full *shared*
limit (the destination's, the prefix's, the global one: filled by other
people's real messages, which decoys never are) answers as a send and drops
the message, or the refusal would tell which subjects are enrolled (see
:func:`count_send`).
"""

from __future__ import annotations

import datetime as dt
import functools

import attrs
import phonenumbers

from macnss_auth.delivery.base import ChannelKind
from macnss_auth.errors import ConfigurationError, RateLimited
from macnss_auth.otp.contacts import Destination, mask_national
from macnss_auth.store._codec import micros
from macnss_auth.store.base import Store
from macnss_auth.throttle import key_part

__all__ = ["ResendPolicy", "count_send", "decoy_destination", "prefix_of"]

_DECOY_EMAIL_DOMAINS = (
    "gmail.com",
    "outlook.com",
    "hotmail.com",
    "yahoo.fr",
    "yahoo.com",
    "hotmail.fr",
    "outlook.fr",
    "menara.ma",
)


@attrs.frozen
class ResendPolicy:
    """How often codes may be sent.

    Attributes:
        cooldown: seconds between the first and second send to a subject or
            destination; each further send doubles it.
        max_cooldown: the longest cooldown.
        daily_per_subject: sends per subject and channel per ``window``.
        daily_per_destination: sends per destination per ``window``, across
            all subjects (one number cannot be flooded through many accounts).
        hourly_per_prefix: sends per hour to one number prefix (country code
            and first national digits, see ``prefix_digits``) or e-mail
            domain, across all subjects: the SMS-pumping brake. None: no cap.
        hourly_global: sends per hour in all, per channel. None: no cap.
        prefix_digits: digits of the E.164 number (country code included)
            that form a prefix.
        window: the length of the "daily" windows, in seconds.
    """

    cooldown: float = 30.0
    max_cooldown: float = 900.0
    daily_per_subject: int = 10
    daily_per_destination: int = 10
    hourly_per_prefix: int | None = 500
    hourly_global: int | None = None
    prefix_digits: int = 6
    window: float = 86_400.0

    def __attrs_post_init__(self) -> None:
        if self.cooldown < 0 or self.max_cooldown < self.cooldown:
            raise ConfigurationError("cooldowns must be >= 0 and max_cooldown >= cooldown")
        caps = (self.daily_per_subject, self.daily_per_destination)
        if min(caps) < 1 or self.window <= 0:
            raise ConfigurationError("daily caps must be >= 1 and the window positive")

    def cooldown_after(self, sends: int) -> float:
        """Seconds that must pass after the ``sends``-th send before the next one."""
        if sends <= 0 or self.cooldown == 0:
            return 0.0
        return float(min(self.cooldown * 2 ** (sends - 1), self.max_cooldown))


def prefix_of(target: Destination, prefix_digits: int) -> str:
    """The number prefix (``+`` and ``prefix_digits`` digits) or the e-mail domain of ``target``."""
    if target.kind is ChannelKind.EMAIL:
        return target.address.rpartition("@")[2].lower()
    return target.address[: 1 + prefix_digits]


def decoy_destination(seed: bytes, kind: ChannelKind, region: str) -> Destination:
    """A plausible destination for a subject without one: stable, never contacted.

    ``seed`` is at least 32 bytes derived from the subject with a secret key,
    so the same subject always gets the same decoy and nobody else can
    compute it; phone decoys look like the region's mobile numbers.
    """
    if kind is ChannelKind.EMAIL:
        letter = "abcdefghijklmnopqrstuvwxyz"[seed[0] % 26]
        domain = _DECOY_EMAIL_DOMAINS[seed[1] % len(_DECOY_EMAIL_DOMAINS)]
        return Destination(kind=ChannelKind.EMAIL, address=f"{letter}.{seed.hex()[:8]}@{domain}")
    national, country = _mobile_example(region)
    digits = "".join(str(b % 10) for b in seed[2 : 2 + len(national)])
    decoy = f"{national[0]}{digits[1 : len(national)]}"
    # The hint is built directly, as a stored destination's hint is read, not parsed.
    return Destination(
        kind=ChannelKind.SMS,
        address=f"+{country}{decoy}",
        hint=mask_national(country, decoy),
    )


def count_send(
    store: Store,
    *,
    policy: ResendPolicy,
    method: str,
    purpose: str,
    subject: str,
    target: Destination,
    destination_id: str,
    now: dt.datetime,
    decoy: bool = False,
    quiet: bool = False,
) -> bool:
    """Count one send against every limit, or refuse it (count-before-check).

    Cooldowns and daily caps count logins and enrollments apart (logging
    in right after confirming a number is normal); prefix and global caps
    count every message. Decoys (unknown subjects) are counted against
    their decoy destination like a real one, but only real messages count
    in the real prefix and global counters: a flood of unknown subjects
    sends nothing and must not exhaust real people's caps.

    **Quiet refusals.** Some limits are the subject's own: its cooldown and
    daily cap, decided by its own requests alone, which an unknown subject's
    requests raise exactly alike. The others are *shared*: the destination's
    (across the subjects that use one number), the prefix's and the global
    one, raised by other people's real messages, which no decoy ever gets.
    Refusing on a shared limit would tell which subjects have a destination
    (with a prefix cap full, its real subjects were refused while unknown
    ones were not). With ``quiet`` (login ``begin``), a full shared limit
    does not raise: the send is counted like any other and this returns
    False, so the caller answers as for a send and drops the message; only
    the subject's own limits raise. Without ``quiet`` (enrollment, where the
    caller authenticated the subject) every limit raises.

    The cooldown is decided atomically. Reading a counter and then
    counting let every request of a parallel burst pass the same cooldown
    (8 at once sent up to 8 SMS). Each send instead *claims* its place:
    the send that follows the ``n``-th one of a window is named by the
    window's start and ``n``, and claiming it is one atomic ``Store.hit``
    on that name. Requests that saw the same state name the same place and
    exactly one gets it; a request that comes after the winner counted its
    send sees the new state, whose cooldown refuses it. A claim lasts one
    cooldown, so a winner that crashed before counting its send holds the
    subject back for one cooldown at most.

    Real and decoy requests, sent or dropped, make the same store calls in
    the same order (only the keys differ), so the calls tell nothing about
    who is enrolled.

    Args:
        store: where the counters live.
        policy: the limits.
        method: ``"sms"`` or ``"email"`` (names the counters).
        purpose: ``"login"`` or ``"enroll"`` (cooldowns and daily caps apart).
        subject: who asks.
        target: where the code would go (a decoy for an unknown subject).
        destination_id: a keyed digest of the address (counters never hold it in clear).
        now: the server's time.
        decoy: ``target`` is a decoy: its message counts in the decoy counters.
        quiet: a full shared limit returns False instead of raising.

    Returns:
        True: send the message. False (only with ``quiet``): the send was
        counted, but a shared limit is full: drop the message.

    Raises:
        RateLimited: a limit is reached (with ``quiet``, one of the subject's
            own); ``retry_after`` says when to try again.
    """
    base = f"oob-send:{method}"
    graded = [
        # The subject encoded (no ':'): raw, "alice:claim:0:0" was alice's first claim key,
        # and any request for it refused her next code.
        (
            f"{base}:{purpose}:subject:{key_part(subject, field='subject')}",
            policy.daily_per_subject,
        ),
        (
            f"{base}:{purpose}:dest:{destination_id}",
            policy.daily_per_destination,
        ),
    ]
    caps: list[tuple[str, int]] = []
    if policy.hourly_per_prefix is not None:
        caps.append(
            (f":prefix:{prefix_of(target, policy.prefix_digits)}", policy.hourly_per_prefix)
        )
    if policy.hourly_global is not None:
        caps.append((":global", policy.hourly_global))
    waits: list[float] = []
    claims: list[tuple[str, float]] = []
    for key, cap in graded:
        state = store.peek(key, now, policy.window)
        sent = 0 if state is None else state.count
        wait = 0.0
        if state is not None:
            if state.count >= cap:
                ends = state.first_at + dt.timedelta(seconds=policy.window)
                wait = (ends - now).total_seconds()
            ready = state.last_at + dt.timedelta(seconds=policy.cooldown_after(state.count))
            wait = max(wait, (ready - now).total_seconds())
        waits.append(wait)
        opened = 0 if state is None else micros(state.first_at)
        claims.append((f"{key}:claim:{opened}:{sent}", policy.cooldown_after(sent + 1)))
    own_wait, shared_wait = waits
    # Everyone reads the real hourly counters of the target (a decoy those of
    # its decoy prefix): a real subject of that prefix would be held back alike.
    for suffix, cap in caps:
        state = store.peek(base + suffix, now, 3600.0)
        if state is not None and state.count >= cap:
            ends = state.first_at + dt.timedelta(seconds=3600.0)
            shared_wait = max(shared_wait, (ends - now).total_seconds())
    if not quiet and max(own_wait, shared_wait) > 0:
        raise _refused(max(own_wait, shared_wait))
    if own_wait > 0:
        # Quiet: retry_after names the subject's own wait only; a shared one
        # would tell as much as the refusal itself.
        raise _refused(own_wait)
    held = shared_wait > 0
    # A message held back counts where decoys count: the same calls on other
    # keys. In the destination's own counters it would take the next send's
    # place and push the number's cooldown further at every retry, though
    # nothing was sent; its subject's counters count it, as a decoy's do.
    aside = f"{base}:decoy"
    (own_key, own_cap), (dest_key, dest_cap) = graded
    (own_claim, own_span), (dest_claim, dest_span) = claims
    if held:
        dest_claim = aside + dest_claim.removeprefix(base)
    if policy.cooldown > 0:
        # The subject's place first, then the destination's, stopping at the
        # first one lost: claiming both at once would let two racers each win
        # one and neither send. Of the requests for one subject exactly one
        # reaches the destination's claim.
        if store.hit(own_claim, now, own_span).count > 1:
            raise _refused(own_span)
        if store.hit(dest_claim, now, dest_span).count > 1 and not held:
            if not quiet:
                raise _refused(dest_span)
            held = True
    if held:
        dest_key = aside + dest_key.removeprefix(base)
    over_own = store.hit(own_key, now, policy.window).count > own_cap
    over = store.hit(dest_key, now, policy.window).count > dest_cap and not held
    real = not (decoy or held)
    counters = base if real else aside
    for suffix, cap in caps:
        counted = store.hit(counters + suffix, now, 3600.0).count
        over |= real and counted > cap  # decoy counters cap nothing: nothing was sent
    if over_own or (over and not quiet):
        # Parallel requests raced past a cap: the later ones are refused.
        raise _refused(policy.cooldown or 1.0)
    return not (held or over)


def _refused(wait: float) -> RateLimited:
    return RateLimited("too many codes were requested; try again later", retry_after=wait)


@functools.lru_cache(maxsize=64)
def _mobile_example(region: str) -> tuple[str, int]:
    """A region's example mobile number (national digits, country code), for decoys."""
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        return "612345678", 212
    return phonenumbers.national_significant_number(example), example.country_code or 212

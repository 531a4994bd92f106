"""A kiosk session: prompt, wait for a card, read, verify, show the result, offer fallbacks.

The kiosk talks to people through two callables (``ask`` and ``say``) and to
the card through ``connect`` (which waits for a card and returns a
transport), so it runs the same under a terminal, a touch screen or a test.
Every prompt is given in Arabic, French and English.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence

import attrs

from macnss_auth.clock import Clock, RandomSource
from macnss_auth.errors import (
    AccessDenied,
    MacnssAuthError,
    MalformedInput,
    PasswordBlocked,
    PasswordSuspended,
    TransportError,
)
from macnss_auth.nfc.lds import parse_dg1
from macnss_auth.nfc.mrz import CAN, PIN
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.nfc.protocol import Transport
from macnss_auth.nfc.reader import DocumentReader
from macnss_auth.nfc.verify import DocumentVerification, VerificationPolicy

__all__ = ["MESSAGES", "Kiosk", "KioskOutcome", "KioskResult"]

# Prompts and results in the three languages of the service, Arabic first.
MESSAGES: dict[str, dict[str, str]] = {
    "place_card": {
        "ar": "ضع بطاقتك الوطنية على القارئ",
        "fr": "Posez votre carte d'identité sur le lecteur",
        "en": "Place your identity card on the reader",
    },
    "enter_can": {
        "ar": "أدخل الرقم المكون من 6 أرقام المطبوع على البطاقة (CAN)",
        "fr": "Saisissez le numéro à 6 chiffres imprimé sur la carte (CAN)",
        "en": "Enter the 6-digit number printed on the card (CAN)",
    },
    "enter_pin": {
        "ar": "أدخل رمزك السري (PIN)",
        "fr": "Saisissez votre code PIN",
        "en": "Enter your PIN",
    },
    "wrong_pin": {
        "ar": "الرمز السري غير صحيح",
        "fr": "Code PIN incorrect",
        "en": "Wrong PIN",
    },
    "pin_suspended": {
        "ar": "الرمز السري معلق: يجب أولا إدخال الرقم المطبوع على البطاقة (CAN) لدى شباك",
        "fr": "Code PIN suspendu : le numéro imprimé sur la carte (CAN) est requis, au guichet",
        "en": "PIN suspended: the number printed on the card (CAN) is needed first, at a desk",
    },
    "pin_blocked": {
        "ar": "الرمز السري محظور: استعمل رمز فك الحظر (PUK) لدى شباك",
        "fr": "Code PIN bloqué : utilisez votre code PUK, au guichet",
        "en": "PIN blocked: use your PUK, at a desk",
    },
    "reading": {
        "ar": "جارٍ القراءة، لا تحرك البطاقة",
        "fr": "Lecture en cours, ne bougez pas la carte",
        "en": "Reading, keep the card still",
    },
    "genuine": {
        "ar": "تم التحقق من البطاقة",
        "fr": "Carte vérifiée",
        "en": "Card verified",
    },
    "not_genuine": {
        "ar": "تعذر التحقق من البطاقة",
        "fr": "La carte n'a pas pu être vérifiée",
        "en": "The card could not be verified",
    },
    "wrong_can": {
        "ar": "الرقم غير صحيح",
        "fr": "Numéro incorrect",
        "en": "Wrong number",
    },
    "link_lost": {
        "ar": "انقطعت القراءة، أعد وضع البطاقة",
        "fr": "Lecture interrompue, reposez la carte",
        "en": "Reading interrupted, place the card again",
    },
    "fallback": {
        "ar": "يمكنك أيضا تسجيل الدخول عبر",
        "fr": "Vous pouvez aussi vous connecter par",
        "en": "You can also sign in with",
    },
    "remove_card": {
        "ar": "يمكنك سحب البطاقة",
        "fr": "Vous pouvez retirer la carte",
        "en": "You may remove the card",
    },
}


def say_all(key: str) -> str:
    """The message ``key`` in every language, one per line (Arabic isolated for bidi)."""
    text = MESSAGES[key]
    # U+2067 / U+2069 isolate the right-to-left line so terminals do not reorder neighbours.
    return f"\u2067{text['ar']}\u2069\n{text['fr']}\n{text['en']}"


class KioskOutcome(str, enum.Enum):
    """How one kiosk session ended."""

    VERIFIED = "verified"
    NOT_GENUINE = "not_genuine"
    WRONG_PASSWORD = "wrong_password"  # noqa: S105 (an outcome name, not a password)
    READ_FAILED = "read_failed"
    CANCELLED = "cancelled"


@attrs.frozen
class KioskResult:
    """One session's outcome, for the caller's own logging (no personal data).

    Attributes:
        outcome: see :class:`KioskOutcome`.
        verification: the verification, when the card was read.
    """

    outcome: KioskOutcome
    verification: DocumentVerification | None = None


class Kiosk:
    """Runs kiosk sessions.

    Args:
        connect: waits for a card and returns a transport to it.
        trust_store: the CSCAs to verify against.
        random: nonces and ephemeral keys.
        clock: the trusted time for certificate validity.
        ask: shows a prompt and returns what the person typed (EOFError stops).
        say: shows text.
        ask_secret: like ``ask`` but without echo, for the PIN (``ask`` if not given).
        use_pin: ask for the card's PIN instead of the CAN. The PIN is held as
            a :class:`~macnss_auth.nfc.mrz.PIN` (a redacted Secret) and never
            shown, logged or put in a result.
        fallbacks: method names to offer when the card cannot be used.
        policy: when a document counts as genuine.
        progress: progress reports while reading.
    """

    def __init__(
        self,
        *,
        connect: Callable[[], Transport],
        trust_store: TrustStore,
        random: RandomSource,
        clock: Clock,
        ask: Callable[[str], str],
        say: Callable[[str], None],
        ask_secret: Callable[[str], str] | None = None,
        use_pin: bool = False,
        fallbacks: Sequence[str] = ("totp", "sms", "email"),
        policy: VerificationPolicy | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        self._connect = connect
        self._trust = trust_store
        self._random = random
        self._clock = clock
        self._ask = ask
        self._say = say
        self._ask_secret = ask_secret or ask
        self._use_pin = use_pin
        self._fallbacks = tuple(fallbacks)
        self._policy = policy
        self._progress = progress

    def serve_one(self) -> KioskResult:
        """One person, from "place your card" to the result."""
        self._say(say_all("place_card"))
        try:
            transport = self._connect()
        except TransportError:
            return self._fail(KioskOutcome.READ_FAILED, "link_lost")
        try:
            return self._serve(transport)
        finally:
            # Release the reader for the next person (a USB reader stays busy otherwise).
            close = getattr(transport, "close", None)
            if callable(close):
                close()

    def _password(self) -> CAN | PIN | None:
        """What the person typed, or ``None`` when it cannot be a CAN or PIN."""
        if self._use_pin:
            answer = self._ask_secret(say_all("enter_pin"))
            try:
                return PIN(answer.strip())
            except MalformedInput:
                return None
        answer = self._ask(say_all("enter_can"))
        try:
            return CAN(answer.strip())
        except MalformedInput:
            return None

    def _serve(self, transport: Transport) -> KioskResult:
        wrong = "wrong_pin" if self._use_pin else "wrong_can"
        try:
            password = self._password()
        except EOFError:
            return KioskResult(KioskOutcome.CANCELLED)
        if password is None:
            return self._fail(KioskOutcome.WRONG_PASSWORD, wrong)
        self._say(say_all("reading"))
        reader = DocumentReader(transport, random=self._random, progress=self._progress)
        try:
            document = reader.read(password, active_auth_challenge=self._random.token_bytes(8))
        except PasswordSuspended:
            return self._fail(KioskOutcome.WRONG_PASSWORD, "pin_suspended")
        except PasswordBlocked:
            return self._fail(
                KioskOutcome.WRONG_PASSWORD, "pin_blocked" if self._use_pin else wrong
            )
        except AccessDenied:
            return self._fail(KioskOutcome.WRONG_PASSWORD, wrong)
        except MacnssAuthError:
            return self._fail(KioskOutcome.READ_FAILED, "link_lost")
        verification = document.verify(self._trust, clock=self._clock, policy=self._policy)
        if not verification.genuine:
            result = self._fail(KioskOutcome.NOT_GENUINE, "not_genuine")
            return attrs.evolve(result, verification=verification)
        try:
            mrz = parse_dg1(document.files["DG1"])
        except (KeyError, MacnssAuthError):
            return self._fail(KioskOutcome.NOT_GENUINE, "not_genuine")
        name = f"{mrz.secondary_identifier} {mrz.primary_identifier}".replace("<", " ")
        self._say(f"{say_all('genuine')}\n{' '.join(name.split())}")
        self._say(say_all("remove_card"))
        return KioskResult(KioskOutcome.VERIFIED, verification)

    def _fail(self, outcome: KioskOutcome, message: str) -> KioskResult:
        self._say(say_all(message))
        if self._fallbacks:
            self._say(f"{say_all('fallback')}: {', '.join(self._fallbacks)}")
        return KioskResult(outcome)

"""A kiosk session: language, identifier, card, password, verify, sign in; fallbacks on failure.

The kiosk talks to people through two callables (``ask`` and ``say``) and to
the card through ``connect`` (which waits for a card and returns a
transport), so it runs the same under a terminal, a touch screen or a test.
Prompts come from the gettext catalogs (:mod:`macnss_auth.catalogs`): every
shipped language at once, or the one the person picks on the language screen.

With an :class:`~macnss_auth.nfc.eid.EidAuthenticator` the kiosk logs people
in: the person's identifier begins a challenge, the card is read over the
challenge's nonce (Active Authentication signs it), and ``verify`` binds the
card to the enrolled person and writes the audit record. The CAN opens a
PACE card; a chip without PACE (a passport) opens with the MRZ, typed field by
field and checked against its check digits before the card is touched.
:mod:`macnss_auth.nfc.kiosk_config` builds a kiosk from a TOML file.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence

import attrs

from macnss_auth.authenticator import AuthResult, Challenge, ClientContext
from macnss_auth.catalogs import (
    N_,
    NP_,
    available_languages,
    direction,
    language_name,
    ngettext,
    pgettext,
)
from macnss_auth.clock import Clock, RandomSource
from macnss_auth.errors import (
    AccessDenied,
    AuthenticationFailed,
    ConfigurationError,
    MacnssAuthError,
    MalformedInput,
    PasswordBlocked,
    PasswordSuspended,
    Reason,
    TransportError,
)
from macnss_auth.failures import failure_text
from macnss_auth.nfc.eid import EidAuthenticator
from macnss_auth.nfc.lds import parse_dg1
from macnss_auth.nfc.mrz import CAN, PIN, MrzKey, check_digit
from macnss_auth.nfc.pki import TrustStore
from macnss_auth.nfc.protocol import Transport
from macnss_auth.nfc.reader import DocumentRead, DocumentReader
from macnss_auth.nfc.verify import DocumentRejected, DocumentVerification, VerificationPolicy

__all__ = ["MESSAGES", "Kiosk", "KioskOutcome", "KioskResult"]

# Prompts and results: key -> the English text, marked for the catalogs (macnss_auth.catalogs).
_SOURCE: dict[str, tuple[str, str]] = {
    "place_card": N_("kiosk:place_card", "Place your identity card on the reader"),
    "enter_can": N_("kiosk:enter_can", "Enter the 6-digit number printed on the card (CAN)"),
    "enter_pin": N_("kiosk:enter_pin", "Enter your PIN"),
    "wrong_pin": N_("kiosk:wrong_pin", "Wrong PIN"),
    "pin_suspended": N_(
        "kiosk:pin_suspended",
        "PIN suspended: the number printed on the card (CAN) is needed first, at a desk",
    ),
    "pin_blocked": N_("kiosk:pin_blocked", "PIN blocked: use your PUK, at a desk"),
    "reading": N_("kiosk:reading", "Reading, keep the card still"),
    "genuine": N_("kiosk:genuine", "Card verified"),
    "not_genuine": N_("kiosk:not_genuine", "The card could not be verified"),
    "wrong_can": N_("kiosk:wrong_can", "Wrong number"),
    "link_lost": N_("kiosk:link_lost", "Reading interrupted, place the card again"),
    "fallback": N_("kiosk:fallback", "You can also sign in with"),
    "remove_card": N_("kiosk:remove_card", "You may remove the card"),
    "choose_language": N_("kiosk:choose_language", "Choose your language: type its number"),
    "enter_identifier": N_(
        "kiosk:enter_identifier",
        "Type the identifier the service gave you (for example your member number)",
    ),
    "enter_can_or_mrz": N_(
        "kiosk:enter_can_or_mrz",
        "Enter the 6-digit number printed on the card (CAN), "
        "or press Enter if your document has none (passport)",
    ),
    "needs_mrz": N_(
        "kiosk:needs_mrz",
        "This document opens with the machine-readable zone (the lines with <<< on it)",
    ),
    "mrz_number": N_(
        "kiosk:mrz_number",
        "Type the document number and the digit after it, as in the machine-readable zone",
    ),
    "mrz_birth": N_(
        "kiosk:mrz_birth",
        "Type the date of birth (YYMMDD) and the digit after it, as in the machine-readable zone",
    ),
    "mrz_expiry": N_(
        "kiosk:mrz_expiry",
        "Type the expiry date (YYMMDD) and the digit after it, as in the machine-readable zone",
    ),
    "mrz_check_digit": N_(
        "kiosk:mrz_check_digit",
        "The last digit does not match what you typed before it: check and type it again",
    ),
    "mrz_wrong": N_("kiosk:mrz_wrong", "Wrong machine-readable zone"),
    "signed_in": N_("kiosk:signed_in", "You are signed in"),
    "method_totp": N_("kiosk:method_totp", "Code from an authenticator app"),
    "method_hotp": N_("kiosk:method_hotp", "Code from a hardware token"),
    "method_sms": N_("kiosk:method_sms", "Code by SMS"),
    "method_email": N_("kiosk:method_email", "Code by e-mail"),
    "method_recovery": N_("kiosk:method_recovery", "Recovery code"),
    "method_passkey": N_("kiosk:method_passkey", "Passkey"),
}
# TRANSLATORS: between the names of the other ways to sign in (Arabic uses "، ").
_LIST_SEPARATOR = N_("kiosk:list_separator", ", ")
# TRANSLATORS: said after a wrong CAN, PIN or MRZ when the card says how many tries are left.
_TRIES_LEFT = NP_("kiosk:tries_left", "{n} try left", "{n} tries left")

#: Every prompt in every shipped language: key -> language -> text.
MESSAGES: dict[str, dict[str, str]] = {
    key: {language: pgettext(language, marked) for language in available_languages()}
    for key, marked in _SOURCE.items()
}


def say_all(key: str, languages: Sequence[str] | None = None) -> str:
    """The message ``key`` in ``languages`` (every shipped one by default), one per line.

    A right-to-left line is isolated (U+2067 ... U+2069) so terminals do not reorder
    its neighbours.
    """
    return "\n".join(
        _isolated(language, MESSAGES[key][language])
        for language in (languages or available_languages())
    )


def _isolated(language: str, text: str) -> str:
    return f"\u2067{text}\u2069" if direction(language) == "rtl" else text


class KioskOutcome(str, enum.Enum):
    """How one kiosk session ended."""

    VERIFIED = "verified"
    SIGNED_IN = "signed_in"
    NOT_GENUINE = "not_genuine"
    NOT_THEIR_CARD = "not_their_card"
    WRONG_PASSWORD = "wrong_password"  # noqa: S105 (an outcome name, not a password)
    READ_FAILED = "read_failed"
    REFUSED = "refused"
    CANCELLED = "cancelled"


@attrs.frozen
class KioskResult:
    """One session's outcome, for the caller's own logging (no personal data).

    Attributes:
        outcome: see :class:`KioskOutcome`.
        verification: the verification, when the card was read.
        auth: who signed in, when the kiosk has an authenticator (the
            :class:`~macnss_auth.AuthResult`, whose ``audit_event_id`` names
            the audit record).
        language: the language the person chose.
    """

    outcome: KioskOutcome
    verification: DocumentVerification | None = None
    auth: AuthResult | None = None
    language: str | None = None


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
        fallbacks: method names to offer when the card cannot be used (shown
            by their localized names).
        policy: when a document counts as genuine (the authenticator's own
            policy when there is one).
        progress: progress reports while reading.
        languages: the languages to speak (every shipped catalog by default).
        choose_language: start with a language choice screen and then speak
            only the chosen language (otherwise every language at once).
        authenticator: log people in: the kiosk asks for the identifier the
            service gave the person, reads the card over the authenticator's
            nonce, and :meth:`~macnss_auth.nfc.eid.EidAuthenticator.verify`
            binds the card to the enrolled person and writes the audit record.
        kiosk_id: the kiosk's name in audit records and throttles.
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
        languages: Sequence[str] | None = None,
        choose_language: bool = False,
        authenticator: EidAuthenticator | None = None,
        kiosk_id: str | None = None,
    ) -> None:
        languages = tuple(languages or available_languages())
        for language in languages:
            if language not in available_languages():
                raise ConfigurationError(f"no catalog for the kiosk language {language!r}")
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
        self._all_languages = languages
        self._choose = choose_language and len(languages) > 1
        self._languages = languages
        self._authenticator = authenticator
        self._context = ClientContext(client_id=kiosk_id)

    def _text(self, key: str) -> str:
        return say_all(key, self._languages)

    def _choose_language(self) -> str:
        """Show the language screen; the first language unless the answer names another."""
        lines = [
            f"{number}. {_isolated(code, language_name(code))}"
            for number, code in enumerate(self._all_languages, start=1)
        ]
        self._say("\n".join(lines))
        answer = self._ask(say_all("choose_language", self._all_languages)).strip().lower()
        # isdecimal(), not isdigit(): int() refuses "²"; the length keeps int() under its limit.
        number = int(answer) if answer.isdecimal() and len(answer) <= 3 else 0
        if 1 <= number <= len(self._all_languages):
            return self._all_languages[number - 1]
        if answer in self._all_languages:
            return answer
        return self._all_languages[0]

    def serve_one(self) -> KioskResult:
        """One person, from the language screen to the result."""
        self._languages = self._all_languages
        try:
            if self._choose:
                self._languages = (self._choose_language(),)
            challenge = self._begin()
        except EOFError:
            return KioskResult(KioskOutcome.CANCELLED)
        if challenge is None:
            return self._fail(KioskOutcome.REFUSED, None)
        language = self._languages[0] if len(self._languages) == 1 else None
        self._say(self._text("place_card"))
        try:
            transport = self._connect()
        except TransportError:
            return self._fail(KioskOutcome.READ_FAILED, "link_lost")
        try:
            result = self._serve(transport, challenge)
        finally:
            # Release the reader for the next person (a USB reader stays busy otherwise).
            close = getattr(transport, "close", None)
            if callable(close):
                close()
        return attrs.evolve(result, language=language)

    def _begin(self) -> Challenge | bool | None:
        """The authenticator's challenge for the person (``True`` with no authenticator)."""
        if self._authenticator is None:
            return True
        identifier = self._ask(self._text("enter_identifier")).strip()
        try:
            return self._authenticator.begin(identifier, context=self._context)
        except MacnssAuthError:
            return None

    def _password(self) -> tuple[CAN | PIN | MrzKey | None, str]:
        """What the person typed (``None`` when it cannot be one) and what to say if wrong."""
        if self._use_pin:
            answer = self._ask_secret(self._text("enter_pin"))
            try:
                return PIN(answer.strip()), "wrong_pin"
            except MalformedInput:
                return None, "wrong_pin"
        answer = self._ask(self._text("enter_can_or_mrz")).strip()
        if not answer:
            return self._mrz(), "mrz_wrong"
        try:
            return CAN(answer), "wrong_can"
        except MalformedInput:
            return None, "wrong_can"

    def _mrz_field(self, key: str, *, date: bool) -> str | None:
        """One MRZ field typed with its check digit; re-asked after a wrong digit."""
        for _ in range(3):
            answer = self._ask(self._text(key)).strip().upper().replace(" ", "")
            value, digit = answer[:-1], answer[-1:]
            shaped = len(value) == 6 and value.isdigit() if date else 1 <= len(value) <= 9
            # isascii(): "²" passes isdigit() and int() refuses it.
            try:
                ok = (
                    shaped
                    and digit.isascii()
                    and digit.isdigit()
                    and check_digit(value) == int(digit)
                )
            except MalformedInput:
                ok = False
            if ok:
                return value
            self._say(self._text("mrz_check_digit"))
        return None

    def _mrz(self) -> MrzKey | None:
        """The MRZ fields, each checked against its check digit as the person types."""
        number = self._mrz_field("mrz_number", date=False)
        birth = self._mrz_field("mrz_birth", date=True) if number else None
        expiry = self._mrz_field("mrz_expiry", date=True) if birth else None
        if number is None or birth is None or expiry is None:
            return None
        try:
            return MrzKey(number, birth, expiry)
        except MalformedInput:
            return None

    def _wrong(self, password: CAN | PIN | MrzKey) -> str:
        if isinstance(password, MrzKey):
            return "mrz_wrong"
        return "wrong_pin" if self._use_pin else "wrong_can"

    def _read(
        self, transport: Transport, password: CAN | PIN | MrzKey, nonce: bytes
    ) -> DocumentRead | KioskResult:
        reader = DocumentReader(transport, random=self._random, progress=self._progress)
        try:
            return reader.read(password, active_auth_challenge=nonce)
        except PasswordSuspended:
            return self._fail(KioskOutcome.WRONG_PASSWORD, "pin_suspended")
        except PasswordBlocked:
            key = "pin_blocked" if self._use_pin else self._wrong(password)
            return self._fail(KioskOutcome.WRONG_PASSWORD, key)
        except AccessDenied as exc:
            return self._fail(
                KioskOutcome.WRONG_PASSWORD, self._wrong(password), tries=exc.remaining_attempts
            )
        except ConfigurationError:
            raise
        except MacnssAuthError:
            return self._fail(KioskOutcome.READ_FAILED, "link_lost")

    def _serve(self, transport: Transport, challenge: Challenge | bool) -> KioskResult:
        try:
            password, wrong = self._password()
        except EOFError:
            return KioskResult(KioskOutcome.CANCELLED)
        if password is None:
            return self._fail(KioskOutcome.WRONG_PASSWORD, wrong)
        nonce = (
            bytes.fromhex(challenge.data["nonce"])
            if isinstance(challenge, Challenge)
            else self._random.token_bytes(8)
        )
        self._say(self._text("reading"))
        try:
            document = self._read(transport, password, nonce)
        except ConfigurationError:
            # A chip without PACE (a BAC passport) opens only with the MRZ.
            self._say(self._text("needs_mrz"))
            try:
                password = self._mrz()
            except EOFError:
                return KioskResult(KioskOutcome.CANCELLED)
            if password is None:
                return self._fail(KioskOutcome.WRONG_PASSWORD, "mrz_wrong")
            self._say(self._text("reading"))
            try:
                document = self._read(transport, password, nonce)
            except ConfigurationError:
                return self._fail(KioskOutcome.READ_FAILED, "link_lost")
        if isinstance(document, KioskResult):
            return document
        if isinstance(challenge, Challenge) and self._authenticator is not None:
            return self._sign_in(self._authenticator, challenge, document)
        verification = document.verify(self._trust, clock=self._clock, policy=self._policy)
        if not verification.genuine:
            result = self._fail(KioskOutcome.NOT_GENUINE, "not_genuine")
            return attrs.evolve(result, verification=verification)
        name = self._holder(document)
        if name is None:
            return self._fail(KioskOutcome.NOT_GENUINE, "not_genuine")
        self._say(f"{self._text('genuine')}\n{name}")
        self._say(self._text("remove_card"))
        return KioskResult(KioskOutcome.VERIFIED, verification)

    @staticmethod
    def _holder(document: DocumentRead) -> str | None:
        try:
            mrz = parse_dg1(document.files["DG1"])
        except (KeyError, MacnssAuthError):
            return None
        name = f"{mrz.secondary_identifier} {mrz.primary_identifier}".replace("<", " ")
        return " ".join(name.split())

    def _sign_in(
        self, authenticator: EidAuthenticator, challenge: Challenge, document: DocumentRead
    ) -> KioskResult:
        try:
            auth = authenticator.verify(challenge, document, context=self._context)
        except DocumentRejected as exc:
            result = self._fail(KioskOutcome.NOT_GENUINE, "not_genuine")
            return attrs.evolve(result, verification=exc.verification)
        except AuthenticationFailed as exc:
            outcome = (
                KioskOutcome.NOT_THEIR_CARD
                if exc.reason is Reason.DOCUMENT_MISMATCH
                else KioskOutcome.REFUSED
            )
            return self._fail(outcome, None, failure=exc)
        except MacnssAuthError as exc:
            return self._fail(KioskOutcome.REFUSED, None, failure=exc)
        name = self._holder(document) or ""
        self._say(f"{self._text('signed_in')}\n{name}".rstrip())
        self._say(self._text("remove_card"))
        return KioskResult(KioskOutcome.SIGNED_IN, auth=auth)

    def _fail(
        self,
        outcome: KioskOutcome,
        message: str | None,
        *,
        tries: int | None = None,
        failure: BaseException | None = None,
    ) -> KioskResult:
        if message is not None:
            lines = [self._text(message)]
        else:
            lines = [
                _isolated(
                    lang, failure_text(failure or MacnssAuthError(), language=lang, method="eid")
                )
                for lang in self._languages
            ]
        if tries is not None:
            lines.extend(
                _isolated(lang, ngettext(lang, _TRIES_LEFT, tries).format(n=tries))
                for lang in self._languages
            )
        self._say("\n".join(lines))
        if self._fallbacks:
            self._say(
                "\n".join(
                    _isolated(lang, f"{MESSAGES['fallback'][lang]}: {self._fallback_names(lang)}")
                    for lang in self._languages
                )
            )
        return KioskResult(outcome)

    def _fallback_names(self, language: str) -> str:
        names = [
            MESSAGES[f"method_{method}"][language] if f"method_{method}" in MESSAGES else method
            for method in self._fallbacks
        ]
        return pgettext(language, _LIST_SEPARATOR).join(names)

"""What to tell a person after a failure: in their language, about what they did.

A failure has a stable :class:`~macnss_auth.errors.Reason`; the words shown
depend on the reason *and* on the method. "The code is not valid" is right
after a mistyped SMS code and wrong after a card reading (nothing was typed)
or a passkey prompt, so each reason has a text per kind of method:

* ``card``: the eID card (``eid``), read by a phone or a kiosk;
* ``code``: a typed code (``totp``, ``hotp``, ``sms``, ``email``, ``recovery``);
* ``passkey``: a passkey or security key (``passkey``, ``webauthn``);
* ``other``: any other method a service plugs in (neutral wording).

The texts never say more than the reason does (a wrong code and an unknown
account read alike where the method already hides the difference), never
repeat the input, and give the waiting time from ``retry_after``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from macnss_auth.errors import (
    AuthenticationFailed,
    MacnssAuthError,
    MalformedInput,
    Reason,
    UnsupportedLanguage,
)

__all__ = [
    "MESSAGE_LANGUAGES",
    "METHOD_KINDS",
    "check_language",
    "failure_text",
    "method_kind",
]

#: Languages every failure text exists in.
MESSAGE_LANGUAGES = ("ar", "fr", "en")

#: The kind of each standard method; other methods are ``"other"``.
METHOD_KINDS: Mapping[str, str] = {
    "eid": "card",
    "totp": "code",
    "hotp": "code",
    "sms": "code",
    "email": "code",
    "recovery": "code",
    "passkey": "passkey",
    "webauthn": "passkey",
}

_Texts = Mapping[str, Mapping[str, str]]  # kind ("*" for all) -> language -> text

_WAIT: _Texts = {
    "*": {
        "en": "Too many attempts. Try again in {minutes} min.",
        "fr": "Trop d'essais. Réessayez dans {minutes} min.",
        "ar": "محاولات كثيرة. أعد المحاولة بعد {minutes} دقيقة.",
    }
}
_OVER: _Texts = {
    "card": {
        "en": "This sign-in attempt is over. Start again and hold your card to the reader.",
        "fr": "Cette tentative de connexion est terminée. Recommencez et présentez votre carte.",
        "ar": "انتهت محاولة الدخول هذه. ابدأ من جديد وقرّب بطاقتك من القارئ.",
    },
    "code": {
        "en": "This code has expired or was already used. Ask for a new code.",
        "fr": "Ce code a expiré ou a déjà servi. Demandez un nouveau code.",
        "ar": "انتهت صلاحية هذا الرمز أو سبق استعماله. اطلب رمزا جديدا.",
    },
    "*": {
        "en": "This sign-in attempt is over. Please start again.",
        "fr": "Cette tentative de connexion est terminée. Recommencez.",
        "ar": "انتهت محاولة الدخول هذه. ابدأ من جديد.",
    },
}
_TEXTS: Mapping[Reason, _Texts] = {
    Reason.INVALID_CODE: {
        "code": {
            "en": "The code is not valid. Check it and type it again.",
            "fr": "Le code n'est pas valide. Vérifiez-le et saisissez-le à nouveau.",
            "ar": "الرمز غير صالح. تحقق منه واكتبه من جديد.",
        },
        "passkey": {
            "en": "The passkey was not accepted. Try again or use another way.",
            "fr": "La clé d'accès n'a pas été acceptée. Réessayez ou choisissez un autre moyen.",
            "ar": "لم يُقبل مفتاح المرور. أعد المحاولة أو اختر وسيلة أخرى.",
        },
        "card": {
            "en": "The card reading was not accepted. Read the card again.",
            "fr": "La lecture de la carte n'a pas été acceptée. Lisez la carte à nouveau.",
            "ar": "لم تُقبل قراءة البطاقة. اقرأ البطاقة من جديد.",
        },
    },
    Reason.REPLAYED: {
        "code": {
            "en": "This code was already used. Wait for the next one.",
            "fr": "Ce code a déjà servi. Attendez le suivant.",
            "ar": "سبق استعمال هذا الرمز. انتظر الرمز التالي.",
        },
        "card": {
            "en": "This card reading was already used. Read the card again.",
            "fr": "Cette lecture de la carte a déjà servi. Lisez la carte à nouveau.",
            "ar": "سبق استعمال قراءة البطاقة هذه. اقرأ البطاقة من جديد.",
        },
        "passkey": {
            "en": "This passkey answer was already used. Try again.",
            "fr": "Cette réponse de la clé d'accès a déjà servi. Réessayez.",
            "ar": "سبق استعمال جواب مفتاح المرور هذا. أعد المحاولة.",
        },
    },
    Reason.MALFORMED_CODE: {
        "*": {
            "en": "A code has only digits. Check it and type it again.",
            "fr": "Un code ne contient que des chiffres. Vérifiez-le et saisissez-le à nouveau.",
            "ar": "الرمز يتكون من أرقام فقط. تحقق منه واكتبه من جديد.",
        }
    },
    Reason.MALFORMED_RESPONSE: {
        "card": {
            "en": "The card reading could not be understood. Read the card again.",
            "fr": "La lecture de la carte est illisible. Lisez la carte à nouveau.",
            "ar": "تعذّر فهم قراءة البطاقة. اقرأ البطاقة من جديد.",
        },
        "*": {
            "en": "The answer could not be understood. Please try again.",
            "fr": "La réponse est illisible. Réessayez.",
            "ar": "تعذّر فهم الجواب. أعد المحاولة.",
        },
    },
    Reason.THROTTLED: _WAIT,
    Reason.LOCKED_OUT: _WAIT,
    Reason.RATE_LIMITED: _WAIT,
    Reason.CHALLENGE_NOT_FOUND: _OVER,
    Reason.CHALLENGE_EXPIRED: _OVER,
    Reason.CHALLENGE_USED: _OVER,
    Reason.ATTEMPTS_EXHAUSTED: _OVER,
    Reason.NOT_ENROLLED: {
        "*": {
            "en": "This way of signing in is not set up for you. Choose another way.",
            "fr": "Ce moyen de connexion n'est pas activé pour vous. Choisissez-en un autre.",
            "ar": "وسيلة الدخول هذه غير مفعّلة لك. اختر وسيلة أخرى.",
        }
    },
    Reason.ACCESS_DENIED: {
        "card": {
            "en": "The card refused the number. Check the number printed on the card.",
            "fr": "La carte a refusé le numéro. Vérifiez le numéro imprimé sur la carte.",
            "ar": "رفضت البطاقة الرقم. تحقق من الرقم المطبوع على البطاقة.",
        },
        "*": {
            "en": "Access denied.",
            "fr": "Accès refusé.",
            "ar": "تم رفض الدخول.",
        },
    },
    Reason.DOCUMENT_NOT_GENUINE: {
        "*": {
            "en": "The card could not be verified. Read it again or use another way.",
            "fr": "La carte n'a pas pu être vérifiée. Lisez-la à nouveau ou choisissez un autre "
            "moyen.",
            "ar": "تعذّر التحقق من البطاقة. اقرأها من جديد أو اختر وسيلة أخرى.",
        }
    },
    Reason.DOCUMENT_MISMATCH: {
        "*": {
            "en": "This card does not belong to the person signing in.",
            "fr": "Cette carte n'appartient pas à la personne qui se connecte.",
            "ar": "هذه البطاقة لا تخص الشخص الذي يحاول الدخول.",
        }
    },
    Reason.DELIVERY_FAILED: {
        "*": {
            "en": "The code could not be sent. Try again later or use another way.",
            "fr": "Le code n'a pas pu être envoyé. Réessayez plus tard ou choisissez un autre "
            "moyen.",
            "ar": "تعذّر إرسال الرمز. أعد المحاولة لاحقا أو اختر وسيلة أخرى.",
        }
    },
    Reason.METHOD_NOT_OFFERED: {
        "*": {
            "en": "This way of signing in is not available. Choose another way.",
            "fr": "Ce moyen de connexion n'est pas disponible. Choisissez-en un autre.",
            "ar": "وسيلة الدخول هذه غير متاحة. اختر وسيلة أخرى.",
        }
    },
    Reason.UNSUPPORTED_LANGUAGE: {
        "*": {
            "en": "This language is not available.",
            "fr": "Cette langue n'est pas disponible.",
            "ar": "هذه اللغة غير متاحة.",
        }
    },
    # Passkeys: only a passkey ceremony gives these reasons.
    Reason.ORIGIN_MISMATCH: {
        "*": {
            "en": (
                "The passkey was used on another site. Open this service's own page and try again."
            ),
            "fr": (
                "La clé d'accès a été utilisée sur un autre site. Ouvrez la page de ce service "
                "et réessayez."
            ),
            "ar": "استُعمل مفتاح المرور على موقع آخر. افتح صفحة هذه الخدمة وأعد المحاولة.",
        }
    },
    Reason.RP_ID_MISMATCH: {
        "*": {
            "en": "This passkey belongs to another site. Use the passkey made for this service.",
            "fr": (
                "Cette clé d'accès appartient à un autre site. Utilisez celle créée pour ce "
                "service."
            ),
            "ar": "مفتاح المرور هذا لموقع آخر. استعمل المفتاح الخاص بهذه الخدمة.",
        }
    },
    Reason.CHALLENGE_MISMATCH: {
        "*": {
            "en": "The passkey answered another sign-in attempt. Please start again.",
            "fr": "La clé d'accès a répondu à une autre tentative de connexion. Recommencez.",
            "ar": "أجاب مفتاح المرور عن محاولة دخول أخرى. ابدأ من جديد.",
        }
    },
    Reason.UNKNOWN_CREDENTIAL: {
        "*": {
            "en": "This passkey is not (or no longer) registered. Use another way.",
            "fr": "Cette clé d'accès n'est pas (ou plus) enregistrée. Choisissez un autre moyen.",
            "ar": "مفتاح المرور هذا غير مسجل أو لم يعد مسجلا. اختر وسيلة أخرى.",
        }
    },
    Reason.INVALID_SIGNATURE: {
        "*": {
            "en": "The passkey's signature is not valid. Try again or use another way.",
            "fr": (
                "La signature de la clé d'accès n'est pas valide. Réessayez ou choisissez un "
                "autre moyen."
            ),
            "ar": "توقيع مفتاح المرور غير صالح. أعد المحاولة أو اختر وسيلة أخرى.",
        }
    },
    Reason.USER_NOT_PRESENT: {
        "*": {
            "en": "Your device did not confirm that you were there. Try again.",
            "fr": "Votre appareil n'a pas confirmé votre présence. Réessayez.",
            "ar": "لم يؤكد جهازك حضورك. أعد المحاولة.",
        }
    },
    Reason.USER_NOT_VERIFIED: {
        "*": {
            "en": "Your device did not check your fingerprint, face or screen lock. Try again.",
            "fr": (
                "Votre appareil n'a pas vérifié votre empreinte, votre visage ou le "
                "verrouillage d'écran. Réessayez."
            ),
            "ar": "لم يتحقق جهازك من بصمتك أو وجهك أو قفل الشاشة. أعد المحاولة.",
        }
    },
    Reason.SIGN_COUNT_REGRESSED: {
        "*": {
            "en": (
                "This passkey may have been copied, so it was refused. Use another way and "
                "contact us."
            ),
            "fr": (
                "Cette clé d'accès a peut-être été copiée ; elle a été refusée. Choisissez un "
                "autre moyen et contactez-nous."
            ),
            "ar": "ربما نُسخ مفتاح المرور هذا، فرُفض. اختر وسيلة أخرى واتصل بنا.",
        }
    },
    Reason.BACKUP_STATE_INVALID: {
        "*": {
            "en": "Your device answered in a way that is not possible. Use another way.",
            "fr": "Votre appareil a répondu d'une façon impossible. Choisissez un autre moyen.",
            "ar": "أجاب جهازك بطريقة غير ممكنة. اختر وسيلة أخرى.",
        }
    },
    Reason.ATTESTATION_UNTRUSTED: {
        "*": {
            "en": "This kind of device is not accepted for passkeys here. Use another device.",
            "fr": (
                "Ce type d'appareil n'est pas accepté ici pour les clés d'accès. Utilisez un "
                "autre appareil."
            ),
            "ar": "هذا النوع من الأجهزة غير مقبول هنا لمفاتيح المرور. استعمل جهازا آخر.",
        }
    },
    Reason.CREDENTIAL_EXISTS: {
        "*": {
            "en": "This passkey is already registered.",
            "fr": "Cette clé d'accès est déjà enregistrée.",
            "ar": "مفتاح المرور هذا مسجل من قبل.",
        }
    },
    Reason.CREDENTIAL_LIMIT: {
        "*": {
            "en": "You have the most passkeys allowed. Remove one first.",
            "fr": "Vous avez le nombre maximal de clés d'accès. Supprimez-en une d'abord.",
            "ar": "لديك أقصى عدد مسموح به من مفاتيح المرور. احذف واحدا أولا.",
        }
    },
}
_GENERIC: Mapping[str, str] = {
    "en": "That did not work. Please try again or use another way.",
    "fr": "Cela n'a pas fonctionné. Réessayez ou choisissez un autre moyen.",
    "ar": "لم تنجح العملية. أعد المحاولة أو اختر وسيلة أخرى.",
}


def method_kind(method: str | None) -> str:
    """``"card"``, ``"code"``, ``"passkey"`` or ``"other"`` for ``method``."""
    return METHOD_KINDS.get(method or "", "other")


def check_language(language: object) -> str:
    """``language`` if failure texts exist in it.

    Raises:
        UnsupportedLanguage: any other value (a client's choice, never a setup error).
    """
    if not isinstance(language, str) or language not in MESSAGE_LANGUAGES:
        raise UnsupportedLanguage(language, supported=MESSAGE_LANGUAGES)
    return language


def failure_text(failure: BaseException, *, language: str = "fr", method: str | None = None) -> str:
    """The sentence to show a person for ``failure``.

    Args:
        failure: what :meth:`~macnss_auth.policy.Policy.begin` or
            :meth:`~macnss_auth.policy.Policy.verify` raised (any exception:
            unexpected ones get the neutral text).
        language: ``"ar"``, ``"fr"`` or ``"en"``.
        method: the method the person used; by default the failure's own
            ``method`` (which :class:`~macnss_auth.policy.Policy` fills in).

    Raises:
        UnsupportedLanguage: no texts in ``language``.
    """
    language = check_language(language)
    reason: Reason | None = None
    if isinstance(failure, AuthenticationFailed):
        reason = failure.reason
        method = method or failure.method
    elif isinstance(failure, MalformedInput):
        reason = failure.reason
    texts = _TEXTS.get(reason) if reason is not None else None
    if texts is None or not isinstance(failure, MacnssAuthError):
        return _GENERIC[language]
    by_language = texts.get(method_kind(method)) or texts.get("*") or _GENERIC
    retry_after = failure.retry_after if isinstance(failure, AuthenticationFailed) else None
    minutes = max(1, math.ceil((retry_after or 0.0) / 60))
    return by_language[language].format(minutes=minutes)

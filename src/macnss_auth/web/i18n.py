"""The login page's words in Arabic, French and English.

One catalog per language, the same keys in each (a test checks it). Arabic is
written right to left: the page sets ``dir="rtl"`` and its style sheet uses
logical properties only (``margin-inline-start``...), so the layout mirrors
by itself.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["DIRECTIONS", "LANGUAGES", "MESSAGES", "pick_language"]

LANGUAGES = ("ar", "fr", "en")
DIRECTIONS: Mapping[str, str] = {"ar": "rtl", "fr": "ltr", "en": "ltr"}
NAMES: Mapping[str, str] = {"ar": "العربية", "fr": "Français", "en": "English"}

MESSAGES: Mapping[str, Mapping[str, str]] = {
    "en": {
        "title": "Sign in",
        "service": "Sign in to your account",
        "language": "Language",
        "subject": "Your identifier",
        "subject_help": "The identifier the service gave you (for example your member number).",
        "have": "What do you have with you?",
        "have_help": "Tick everything you have. We will offer the ways that work for you.",
        "have_nfc": "A phone with NFC and my ID card",
        "have_app": "A smartphone with an authenticator app",
        "have_sms": "A mobile phone that receives SMS",
        "have_email": "Access to my e-mail",
        "have_passkey": "A phone or computer with a passkey (fingerprint, face or screen lock)",
        "continue": "Continue",
        "choose": "Choose how to sign in",
        "no_methods": "No way to sign in matches what you have. Try ticking more options.",
        "no_nfc": "No NFC phone? Here are other ways",
        "no_nfc_help": "You never need an NFC phone: any of these works too.",
        "method_eid": "ID card on an NFC phone",
        "method_totp": "Code from an authenticator app",
        "method_hotp": "Code from a hardware token",
        "method_sms": "Code by SMS",
        "method_email": "Code by e-mail",
        "method_recovery": "Recovery code",
        "method_passkey": "Passkey on this device",
        "level_low": "basic assurance",
        "level_substantial": "substantial assurance",
        "level_high": "high assurance",
        "code": "Code",
        "code_help_totp": "Open your authenticator app and type the 6-digit code it shows.",
        "code_help_hotp": "Press your token's button and type the code it shows.",
        "code_help_sms": "We sent a code by SMS to {hint}. It is valid for a few minutes.",
        "code_help_email": "We sent a code by e-mail to {hint}. It is valid for a few minutes.",
        "code_help_recovery": "Type one of the recovery codes you saved. Each works once.",
        "verify": "Sign in",
        "other_way": "Use another way",
        "eid_help": "Open the app on your NFC phone, choose ‘Sign in with my ID card’ and "
        "hold the card against the back of the phone. This code links the app to this page:",
        "eid_waiting": "When the app says it is done, press Continue.",
        "success": "You are signed in",
        "success_as": "Signed in as {subject} ({level}).",
        "to_service": "Continue to the service",
        "account": "Your sign-in methods",
        "add_totp": "Add an authenticator app",
        "add_passkey": "Add a passkey on this device",
        "passkey_help": "Your device asks for your fingerprint, face or screen lock. Nothing is "
        "sent but a signature.",
        "passkey_use": "Use my passkey",
        "passkey_again": "Try the passkey again",
        "passkey_no_identifier": "Sign in with a passkey, without typing an identifier",
        "scan": "Scan this QR code with your authenticator app, then type the code it shows.",
        "manual_key": "Or type this key into the app:",
        "confirm": "Confirm",
        "totp_added": "Your authenticator app is ready. Next time you can sign in with it.",
        "sign_out": "Sign out",
        "start_again": "Start again",
        "session_expired": "Your session has expired. Please sign in again.",
        "error_invalid_code": "That code is not right. {remaining}",
        "error_remaining": "Attempts left: {count}.",
        "error_malformed_code": "A code has only digits. Please check and type it again.",
        "error_replayed": "That code was already used. Wait for the next one.",
        "error_throttled": "Too many attempts. Try again in {seconds} seconds.",
        "error_locked_out": "Too many attempts: signing in is blocked for {minutes} minutes. "
        "You can use another way below.",
        "error_rate_limited": "Too many codes were requested. Try again in {minutes} minutes.",
        "error_challenge_expired": "The code has expired. Ask for a new one.",
        "error_challenge_used": "This sign-in attempt is over. Please start again.",
        "error_attempts_exhausted": "Too many wrong codes for this attempt. Ask for a new code.",
        "error_challenge_not_found": "This sign-in attempt is over. Please start again.",
        "error_generic": "That did not work. Please try again or use another way.",
        "error_unknown_credential": "This passkey is not (or no longer) registered. Please use "
        "another way.",
        "error_user_not_verified": "Your device did not check your fingerprint, face or screen "
        "lock.",
        "error_sign_count_regressed": "This passkey may have been copied; it was refused. Please "
        "use another way and contact us.",
        "error_form": "The form expired. Please try again.",
        "error_subject": "Please type your identifier.",
    },
    "fr": {
        "title": "Connexion",
        "service": "Connectez-vous à votre compte",
        "language": "Langue",
        "subject": "Votre identifiant",
        "subject_help": "L’identifiant que le service vous a donné (par exemple votre numéro "
        "d’immatriculation).",
        "have": "Qu’avez-vous avec vous ?",
        "have_help": "Cochez tout ce que vous avez. Nous vous proposerons les moyens qui vous "
        "conviennent.",
        "have_nfc": "Un téléphone NFC et ma carte d’identité",
        "have_app": "Un smartphone avec une application d’authentification",
        "have_sms": "Un téléphone mobile qui reçoit des SMS",
        "have_email": "L’accès à ma messagerie",
        "have_passkey": "Un téléphone ou un ordinateur avec une clé d’accès (empreinte, visage ou "
        "verrouillage d’écran)",
        "continue": "Continuer",
        "choose": "Choisissez comment vous connecter",
        "no_methods": "Aucun moyen de connexion ne correspond. Cochez d’autres options.",
        "no_nfc": "Pas de téléphone NFC ? Voici d’autres moyens",
        "no_nfc_help": "Un téléphone NFC n’est jamais obligatoire : chacun de ces moyens "
        "fonctionne aussi.",
        "method_eid": "Carte d’identité sur un téléphone NFC",
        "method_totp": "Code d’une application d’authentification",
        "method_hotp": "Code d’un jeton matériel",
        "method_sms": "Code par SMS",
        "method_email": "Code par e-mail",
        "method_recovery": "Code de secours",
        "method_passkey": "Clé d’accès sur cet appareil",
        "level_low": "garantie faible",
        "level_substantial": "garantie substantielle",
        "level_high": "garantie élevée",
        "code": "Code",
        "code_help_totp": "Ouvrez votre application d’authentification et saisissez le code à "
        "6 chiffres affiché.",
        "code_help_hotp": "Appuyez sur le bouton de votre jeton et saisissez le code affiché.",
        "code_help_sms": "Nous avons envoyé un code par SMS au {hint}. Il est valable quelques "
        "minutes.",
        "code_help_email": "Nous avons envoyé un code par e-mail à {hint}. Il est valable "
        "quelques minutes.",
        "code_help_recovery": "Saisissez l’un des codes de secours que vous avez conservés. "
        "Chacun ne sert qu’une fois.",
        "verify": "Se connecter",
        "other_way": "Utiliser un autre moyen",
        "eid_help": "Ouvrez l’application sur votre téléphone NFC, choisissez « Me connecter "
        "avec ma carte » et posez la carte au dos du téléphone. Ce code relie l’application à "
        "cette page :",
        "eid_waiting": "Quand l’application indique que c’est fait, appuyez sur Continuer.",
        "success": "Vous êtes connecté",
        "success_as": "Connecté en tant que {subject} ({level}).",
        "to_service": "Continuer vers le service",
        "account": "Vos moyens de connexion",
        "add_totp": "Ajouter une application d’authentification",
        "add_passkey": "Ajouter une clé d’accès sur cet appareil",
        "passkey_help": "Votre appareil demande votre empreinte, votre visage ou le verrouillage "
        "d’écran. Seule une signature est envoyée.",
        "passkey_use": "Utiliser ma clé d’accès",
        "passkey_again": "Réessayer la clé d’accès",
        "passkey_no_identifier": "Se connecter avec une clé d’accès, sans saisir d’identifiant",
        "scan": "Scannez ce QR code avec votre application d’authentification, puis saisissez "
        "le code affiché.",
        "manual_key": "Ou saisissez cette clé dans l’application :",
        "confirm": "Confirmer",
        "totp_added": "Votre application d’authentification est prête. La prochaine fois, vous "
        "pourrez vous connecter avec elle.",
        "sign_out": "Se déconnecter",
        "start_again": "Recommencer",
        "session_expired": "Votre session a expiré. Veuillez vous reconnecter.",
        "error_invalid_code": "Ce code n’est pas le bon. {remaining}",
        "error_remaining": "Essais restants : {count}.",
        "error_malformed_code": "Un code ne contient que des chiffres. Vérifiez et saisissez-le "
        "à nouveau.",
        "error_replayed": "Ce code a déjà été utilisé. Attendez le suivant.",
        "error_throttled": "Trop d’essais. Réessayez dans {seconds} secondes.",
        "error_locked_out": "Trop d’essais : la connexion est bloquée pendant {minutes} minutes. "
        "Vous pouvez utiliser un autre moyen ci-dessous.",
        "error_rate_limited": "Trop de codes demandés. Réessayez dans {minutes} minutes.",
        "error_challenge_expired": "Le code a expiré. Demandez-en un nouveau.",
        "error_challenge_used": "Cette tentative de connexion est terminée. Veuillez recommencer.",
        "error_attempts_exhausted": "Trop de codes erronés pour cette tentative. Demandez un "
        "nouveau code.",
        "error_challenge_not_found": "Cette tentative de connexion est terminée. Veuillez "
        "recommencer.",
        "error_generic": "Cela n’a pas fonctionné. Réessayez ou utilisez un autre moyen.",
        "error_unknown_credential": "Cette clé d’accès n’est pas (ou plus) enregistrée. Utilisez "
        "un autre moyen.",
        "error_user_not_verified": "Votre appareil n’a pas vérifié votre empreinte, votre visage "
        "ou le verrouillage d’écran.",
        "error_sign_count_regressed": "Cette clé d’accès a peut-être été copiée ; elle a été "
        "refusée. Utilisez un autre moyen et contactez-nous.",
        "error_form": "Le formulaire a expiré. Veuillez réessayer.",
        "error_subject": "Veuillez saisir votre identifiant.",
    },
    "ar": {
        "title": "تسجيل الدخول",
        "service": "سجّل الدخول إلى حسابك",
        "language": "اللغة",
        "subject": "المعرّف الخاص بك",
        "subject_help": "المعرّف الذي أعطتك إياه الإدارة (مثلاً رقم التسجيل).",
        "have": "ماذا لديك الآن؟",
        "have_help": "اختر كل ما لديك، وسنقترح عليك الطرق المناسبة.",
        "have_nfc": "هاتف يدعم NFC وبطاقة التعريف",
        "have_app": "هاتف ذكي عليه تطبيق مصادقة",
        "have_sms": "هاتف محمول يستقبل الرسائل القصيرة",
        "have_email": "بريدي الإلكتروني",
        "have_passkey": "هاتف أو حاسوب عليه مفتاح مرور (بصمة أو وجه أو قفل الشاشة)",
        "continue": "متابعة",
        "choose": "اختر طريقة تسجيل الدخول",
        "no_methods": "لا توجد طريقة تناسب ما لديك. اختر خيارات أخرى.",
        "no_nfc": "ليس لديك هاتف NFC؟ إليك طرقاً أخرى",
        "no_nfc_help": "الهاتف الذي يدعم NFC ليس ضرورياً أبداً: كل هذه الطرق تعمل أيضاً.",
        "method_eid": "بطاقة التعريف على هاتف NFC",
        "method_totp": "رمز من تطبيق المصادقة",
        "method_hotp": "رمز من جهاز المصادقة",
        "method_sms": "رمز عبر رسالة قصيرة",
        "method_email": "رمز عبر البريد الإلكتروني",
        "method_recovery": "رمز الاسترداد",
        "method_passkey": "مفتاح المرور على هذا الجهاز",
        "level_low": "ضمان أساسي",
        "level_substantial": "ضمان جوهري",
        "level_high": "ضمان عالٍ",
        "code": "الرمز",
        "code_help_totp": "افتح تطبيق المصادقة واكتب الرمز المكوّن من 6 أرقام الظاهر فيه.",
        "code_help_hotp": "اضغط زر جهاز المصادقة واكتب الرمز الظاهر.",
        "code_help_sms": "أرسلنا رمزاً في رسالة قصيرة إلى {hint}. وهو صالح لبضع دقائق.",
        "code_help_email": "أرسلنا رمزاً عبر البريد الإلكتروني إلى {hint}. وهو صالح لبضع دقائق.",
        "code_help_recovery": "اكتب أحد رموز الاسترداد التي احتفظت بها. كل رمز يُستعمل مرة واحدة.",
        "verify": "تسجيل الدخول",
        "other_way": "استعمال طريقة أخرى",
        "eid_help": "افتح التطبيق على هاتفك الذي يدعم NFC، واختر «الدخول ببطاقتي» ثم ضع البطاقة "
        "على ظهر الهاتف. هذا الرمز يربط التطبيق بهذه الصفحة:",
        "eid_waiting": "عندما يخبرك التطبيق بانتهاء العملية، اضغط متابعة.",
        "success": "تم تسجيل دخولك",
        "success_as": "تم الدخول باسم {subject} ({level}).",
        "to_service": "المتابعة إلى الخدمة",
        "account": "طرق تسجيل الدخول الخاصة بك",
        "add_totp": "إضافة تطبيق مصادقة",
        "add_passkey": "إضافة مفتاح مرور على هذا الجهاز",
        "passkey_help": "يطلب جهازك بصمتك أو وجهك أو قفل الشاشة. لا يُرسل سوى توقيع.",
        "passkey_use": "استعمال مفتاح المرور",
        "passkey_again": "إعادة المحاولة بمفتاح المرور",
        "passkey_no_identifier": "الدخول بمفتاح المرور دون كتابة المعرف",
        "scan": "امسح رمز QR هذا بتطبيق المصادقة، ثم اكتب الرمز الذي يظهر.",
        "manual_key": "أو اكتب هذا المفتاح في التطبيق:",
        "confirm": "تأكيد",
        "totp_added": "تطبيق المصادقة جاهز. يمكنك استعماله لتسجيل الدخول في المرة القادمة.",
        "sign_out": "تسجيل الخروج",
        "start_again": "البدء من جديد",
        "session_expired": "انتهت الجلسة. يرجى تسجيل الدخول من جديد.",
        "error_invalid_code": "هذا الرمز غير صحيح. {remaining}",
        "error_remaining": "المحاولات المتبقية: {count}.",
        "error_malformed_code": "الرمز يتكوّن من أرقام فقط. تحقّق منه واكتبه من جديد.",
        "error_replayed": "هذا الرمز استُعمل من قبل. انتظر الرمز التالي.",
        "error_throttled": "محاولات كثيرة. أعد المحاولة بعد {seconds} ثانية.",
        "error_locked_out": "محاولات كثيرة: تسجيل الدخول موقوف لمدة {minutes} دقيقة. "
        "يمكنك استعمال طريقة أخرى أدناه.",
        "error_rate_limited": "طُلبت رموز كثيرة. أعد المحاولة بعد {minutes} دقيقة.",
        "error_challenge_expired": "انتهت صلاحية الرمز. اطلب رمزاً جديداً.",
        "error_challenge_used": "انتهت محاولة الدخول هذه. يرجى البدء من جديد.",
        "error_attempts_exhausted": "رموز خاطئة كثيرة في هذه المحاولة. اطلب رمزاً جديداً.",
        "error_challenge_not_found": "انتهت محاولة الدخول هذه. يرجى البدء من جديد.",
        "error_generic": "لم تنجح العملية. أعد المحاولة أو استعمل طريقة أخرى.",
        "error_unknown_credential": "مفتاح المرور هذا غير مسجل (أو لم يعد مسجلا). استعمل طريقة "
        "أخرى.",
        "error_user_not_verified": "لم يتحقق جهازك من بصمتك أو وجهك أو قفل الشاشة.",
        "error_sign_count_regressed": "ربما نُسخ مفتاح المرور هذا، فرُفض. استعمل طريقة أخرى واتصل "
        "بنا.",
        "error_form": "انتهت صلاحية الاستمارة. يرجى إعادة المحاولة.",
        "error_subject": "يرجى كتابة المعرّف الخاص بك.",
    },
}


def pick_language(requested: str | None, cookie: str | None, accept: str | None) -> str:
    """The page's language: an explicit choice, then the cookie, then Accept-Language, then fr."""
    for candidate in (requested, cookie):
        if candidate in LANGUAGES:
            return candidate
    for part in (accept or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return "fr"

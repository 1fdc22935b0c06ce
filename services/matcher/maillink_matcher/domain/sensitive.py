"""Sensitive mail: password resets, sign-in and two-factor codes, bank and payroll statements.
Pure. Such mail is private to its owner whatever the sharing default (users ask for exactly
this: twenty#20944); the owner may still share a thread on purpose.

Recognised from the subject, the start of the body and the sender's mailbox name, in English,
Czech, Slovak, German, French, Spanish, Portuguese, Italian, Polish and Dutch. Bulk marketing
from a bank is not "sensitive" by itself: the patterns name the statement or the code.
"""
import re
from enum import StrEnum


class Sensitive(StrEnum):
    PASSWORD_RESET = "password_reset"
    SIGN_IN_CODE = "sign_in_code"
    STATEMENT = "statement"


_PATTERNS: dict[Sensitive, list[str]] = {
    Sensitive.PASSWORD_RESET: [
        r"reset (your |the )?password", r"password reset", r"forgot(ten)? (your )?password", r"change your password",
        r"obnov(a|en[ií]|te)? hesla", r"zapomenut[eé] heslo", r"reset hesla", r"zabudnut[eé] heslo",
        r"passwort (zurücksetzen|vergessen)", r"zurücksetzen (ihres|deines) passworts",
        r"r[ée]initialis(er|ation) (de )?(votre |ton )?mot de passe", r"mot de passe oubli[ée]",
        r"restablecer (tu |su )?contrase[ñn]a", r"(redefinir|recuperar) (a sua |sua )?senha",
        r"reimposta(re)? (la )?password", r"resetowanie has[łl]a", r"zresetuj has[łl]o",
        r"wachtwoord (opnieuw instellen|herstellen|vergeten)",
    ],
    Sensitive.SIGN_IN_CODE: [
        r"verification code", r"security code", r"(sign[- ]?in|login|log-in) code", r"one[- ]time (pass(word|code)|code)",
        r"\b2fa\b", r"two[- ]factor", r"\botp\b", r"confirm your sign[- ]?in", r"authentication code",
        r"ověřovací kód", r"přihlašovací kód", r"jednorázový kód", r"overovací kód", r"prihlasovací kód",
        r"(bestätigungs|sicherheits|anmelde)code", r"zwei-faktor", r"code de (vérification|connexion|sécurité)",
        r"c[óo]digo de (verificaci[óo]n|seguridad|acceso|verifica[çc][ãa]o)", r"codice di (verifica|accesso|sicurezza)",
        r"kod (weryfikacyjny|logowania|bezpiecze[ńn]stwa)", r"(verificatie|beveiligings|inlog)code",
    ],
    Sensitive.STATEMENT: [
        r"(bank|account|card|credit card) statement", r"\bpayslip\b", r"pay ?stub", r"payroll", r"salary statement",
        r"výpis z (účtu|karty)", r"bankovní výpis", r"výplatní (páska|lístek)", r"výplatná páska",
        r"kontoauszug", r"gehaltsabrechnung", r"lohnabrechnung", r"relev[ée] de compte", r"bulletin de (paie|salaire)",
        r"extracto (bancario|de cuenta)", r"n[óo]mina", r"extrato (banc[áa]rio|de conta)", r"holerite|contracheque",
        r"estratto conto", r"busta paga", r"wyci[ąa]g (bankowy|z konta)", r"pasek p[łl]acowy",
        r"(bank)?afschrift", r"loonstrook",
    ],
}
_COMPILED = {kind: re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
             for kind, patterns in _PATTERNS.items()}
# A code in the subject from an automated-looking sender, e.g. "123456 is your Instagram code".
_CODE_IN_SUBJECT = re.compile(r"(^|\s)\d{4,8}(\s|$).*\b(code|kód|code|código|codice|kod)\b", re.IGNORECASE)


def classify(subject: str, snippet: str = "", senders: tuple[str, ...] = ()) -> Sensitive | None:
    text = f"{subject}\n{snippet[:280]}"
    for kind, pattern in _COMPILED.items():
        if pattern.search(text):
            return kind
    if _CODE_IN_SUBJECT.search(subject):
        return Sensitive.SIGN_IN_CODE
    return None

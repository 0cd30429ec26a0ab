"""Swedish first, English available: one small message catalogue.

The language comes from the ``lang`` cookie (set by ``/lang/{code}``), else Swedish. A missing
key falls back to Swedish, then to the key itself, so a page never breaks over a translation.
"""

from __future__ import annotations

__all__ = ["LANGUAGES", "MESSAGES", "translate", "translate_error"]

LANGUAGES = ("sv", "en")

MESSAGES: dict[str, tuple[str, str]] = {
    "site": ("Brygga – delta i klinisk forskning", "Brygga – take part in clinical research"),
    "skip": ("Hoppa till innehållet", "Skip to content"),
    "home": ("Start", "Home"),
    "login": ("Logga in", "Log in"),
    "logout": ("Logga ut", "Log out"),
    "language": ("In English", "På svenska"),
    "intro": (
        "Anmäl ditt intresse för att delta i kliniska studier. Du bestämmer själv vad du samtycker till och kan ändra dig när som helst.",
        "Register your interest in taking part in clinical studies. You decide what you consent to and can change your mind at any time.",
    ),
    "resident_login": ("Logga in som invånare", "Log in as a resident"),
    "staff_login": ("Logga in som personal", "Staff log-in"),
    "demo_label": (
        "DEMO: välj en syntetisk person. Ingen riktig e-legitimation används.",
        "DEMO: pick a synthetic person. No real e-ID is used.",
    ),
    "oidc_login": ("Logga in med e-legitimation", "Log in with e-ID"),
    "oidc_staff_login": (
        "Logga in som personal via identitetsleverantören",
        "Staff log-in through the identity provider",
    ),
    "email": ("E-postadress", "E-mail address"),
    "password": ("Lösenord", "Password"),
    "new_password": ("Nytt lösenord", "New password"),
    "set_password": ("Byt lösenord", "Change password"),
    "deactivate": ("Inaktivera", "Deactivate"),
    "inactive": ("inaktiverad", "deactivated"),
    "portal": ("Mina sidor", "My pages"),
    "join": ("Gå med", "Join"),
    "profile": ("Min profil", "My profile"),
    "conditions": ("Sjukdomar", "Conditions"),
    "medicines": ("Läkemedel", "Medicines"),
    "height": ("Längd (cm)", "Height (cm)"),
    "weight": ("Vikt (kg)", "Weight (kg)"),
    "smoking": ("Rökning", "Smoking"),
    "never": ("Aldrig", "Never"),
    "former": ("Tidigare", "Former"),
    "current": ("Röker", "Current"),
    "areas": ("Forskningsområden som intresserar mig", "Research areas I am interested in"),
    "healthy_volunteer": (
        "Jag kan delta som frisk försöksperson",
        "I can take part as a healthy volunteer",
    ),
    "travel": (
        "Hur långt kan du resa (km)? Tomt = hur långt som helst",
        "How far can you travel (km)? Empty = any distance",
    ),
    "channel": ("Hur vill du bli kontaktad?", "How do you want to be contacted?"),
    "in_app": ("Här i Brygga", "Here in Brygga"),
    "sms": ("SMS", "Text message"),
    "save": ("Spara", "Save"),
    "saved": ("Sparat.", "Saved."),
    "consents": ("Samtycken", "Consents"),
    "give": ("Ge samtycke", "Give consent"),
    "withdraw": ("Återkalla", "Withdraw"),
    "given": ("Givet", "Given"),
    "not_given": ("Inte givet", "Not given"),
    "pause": ("Pausa inbjudningar", "Pause invitations"),
    "resume": ("Återuppta inbjudningar", "Resume invitations"),
    "paused": ("Inbjudningar är pausade.", "Invitations are paused."),
    "download": ("Ladda ner mina uppgifter (JSON)", "Download my data (JSON)"),
    "delete": ("Radera mitt konto", "Delete my account"),
    "delete_confirm": (
        "Ja, radera mitt konto och mina uppgifter",
        "Yes, delete my account and my data",
    ),
    "invitations": ("Inbjudningar", "Invitations"),
    "interested": ("Jag är intresserad", "I am interested"),
    "declined": ("Nej tack", "No thanks"),
    "no_invitations": ("Inga inbjudningar än.", "No invitations yet."),
    "studies": ("Studier", "Studies"),
    "new_study": ("Registrera en studie", "Register a study"),
    "status": ("Status", "Status"),
    "submit": ("Skicka in för granskning", "Submit for review"),
    "approve": ("Godkänn", "Approve"),
    "reject": ("Avslå", "Reject"),
    "reason": ("Motivering", "Reason"),
    "feasibility": ("Genomförbarhet", "Feasibility"),
    "funnel": ("Rekrytering", "Recruitment"),
    "contacts": ("Intresserade deltagare", "Interested volunteers"),
    "import_ctgov": (
        "Importera från ClinicalTrials.gov (JSON)",
        "Import from ClinicalTrials.gov (JSON)",
    ),
    "admin": ("Administration", "Administration"),
    "error": ("Något gick fel", "Something went wrong"),
    "fix_errors": ("Rätta felen nedan.", "Please correct the errors below."),
    "own_account": (
        "Du kan inte inaktivera ditt eget konto. Be en annan administratör.",
        "You cannot deactivate your own account. Ask another administrator.",
    ),
    "body_too_large": (
        "Det du skickade är för stort (högst {limit} byte).",
        "What you sent is too large (at most {limit} bytes).",
    ),
    # Refused feasibility questions (privacy.questions.QuestionRefused; {params} filled in).
    "question_refused_rate": (
        "För många genomförbarhetsfrågor: högst {limit} per {minutes} minuter per användare. "
        "Vänta en stund och fråga igen.",
        "Too many feasibility questions: at most {limit} per {minutes} minutes per user. "
        "Wait a while and ask again.",
    ),
    "question_refused_user_budget": (
        "Din kvot av genomförbarhetsfrågor är slut: högst {limit} frågor per {days} dagar "
        "per användare. Forskningskontoret kan hjälpa dig.",
        "Your feasibility budget is used up: at most {limit} questions per {days} days per "
        "user. The research office can help.",
    ),
    "question_refused_study_budget": (
        "Studiens kvot av genomförbarhetsfrågor är slut: högst {limit} frågor per {days} dagar "
        "per studie. Forskningskontoret kan hjälpa dig.",
        "This study's feasibility budget is used up: at most {limit} questions per {days} "
        "days per study. The research office can help.",
    ),
    "question_refused_sweep": (
        "Frågan nekades: den är nästan likadan som {count} andra genomförbarhetsfrågor de "
        "senaste {days} dagarna (bara tal, koder eller reglernas ordning skiljer). En serie "
        "nästan likadana frågor kan avslöja dolda antal, så forskningskontoret har fått en "
        "rapport.",
        "Refused: this question is nearly the same as {count} other feasibility questions "
        "asked in the last {days} days (only numbers, codes or the order of rules differ). "
        "Series of near-identical questions can reveal counts that are hidden, so this has "
        "been reported to the research office.",
    ),
}


def translate_error(exc: Exception, lang: str) -> str | None:
    """The catalogue's text for an error that names its message (``key`` and ``params``, as
    ``privacy.questions.QuestionRefused`` does), or None."""
    key, params = getattr(exc, "key", None), getattr(exc, "params", None)
    if not isinstance(key, str) or key not in MESSAGES or not isinstance(params, dict):
        return None
    return translate(key, lang).format(**params)


def translate(key: str, lang: str) -> str:
    pair = MESSAGES.get(key)
    if pair is None:
        return key
    return pair[1] if lang == "en" else pair[0]

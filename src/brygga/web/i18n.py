"""Swedish first, English available: one small message catalogue.

The language comes from the ``lang`` cookie (set by ``/lang/{code}``), else Swedish. A missing
key falls back to Swedish, then to the key itself, so a page never breaks over a translation.
"""

from __future__ import annotations

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
    "body_too_large": (
        "Det du skickade är för stort (högst {limit} byte).",
        "What you sent is too large (at most {limit} bytes).",
    ),
}


def translate(key: str, lang: str) -> str:
    pair = MESSAGES.get(key)
    if pair is None:
        return key
    return pair[1] if lang == "en" else pair[0]

"""Every page type of the web, in one list: the language test (test_language.py) renders each
in Swedish, and its <title> must be unique. Add your pages here.

A page is (name, role, method, path, form data); ``{study}`` in a path is the approved study of
the ``site`` fixture (tests/web/conftest.py), ``{missing}`` an id that does not exist.
"""

from __future__ import annotations

from typing import Any

SELFCHECK = {"age": "58", "sex": "female", "height_cm": "165", "weight_kg": "80",
             "waist_cm": "92", "active": "no", "vegetables": "yes", "bp_medication": "yes",
             "high_glucose": "no", "family": "second-degree"}  # fmt: skip

# (name, role, method, path, data, expected status)
PAGES: list[tuple[str, str, str, str, dict[str, Any] | None, int]] = [
    # public
    ("start", "public", "GET", "/", None, 200),
    ("log-in", "public", "GET", "/login", None, 200),
    ("catalogue", "public", "GET", "/studier", None, 200),
    (
        "catalogue-search",
        "public",
        "GET",
        "/studier?q=minne&age=50&sex=female&healthy=yes",
        None,
        200,
    ),
    ("catalogue-invalid", "public", "GET", "/studier?age=abc", None, 422),
    ("study", "public", "GET", "/studier/{study}", None, 200),
    ("about", "public", "GET", "/om", None, 200),
    ("contact", "public", "GET", "/kontakt", None, 200),
    ("privacy", "public", "GET", "/om-personuppgifter", None, 200),
    ("cookies", "public", "GET", "/cookies", None, 200),
    ("accessibility", "public", "GET", "/tillganglighet", None, 200),
    ("self-check", "public", "GET", "/egenkontroll", None, 200),
    ("self-check-errors", "public", "POST", "/egenkontroll", {"age": "x"}, 422),
    ("self-check-result", "public", "POST", "/egenkontroll", SELFCHECK, 200),
    ("account-deleted", "public", "GET", "/konto-raderat", None, 200),
    # resident
    ("portal", "resident", "GET", "/portal", None, 200),
    ("profile", "resident", "GET", "/portal/profil", None, 200),
    ("consent-receipt", "resident", "GET", "/portal/samtycken", None, 200),
    ("study-as-resident", "resident", "GET", "/studier/{study}", None, 200),
    ("interest", "resident", "GET", "/studier/{study}/intresse", None, 200),
    # staff
    ("workbench-researcher", "researcher", "GET", "/studies", None, 200),
    ("study-form", "researcher", "GET", "/studies/new", None, 200),
    ("staff-study", "researcher", "GET", "/studies/{study}", None, 200),
    ("contacts", "researcher", "GET", "/studies/{study}/contacts", None, 200),
    ("workbench-office", "research_office", "GET", "/studies", None, 200),
    ("staff-study-office", "research_office", "GET", "/studies/{study}", None, 200),
    ("workbench-care", "care_provider", "GET", "/studies", None, 200),
    ("admin", "admin", "GET", "/admin", None, 200),
    ("steward-audit-log", "data_steward", "GET", "/forvaltning/logg", None, 200),
    ("steward-budgets", "data_steward", "GET", "/forvaltning/budgetar", None, 200),
    ("steward-rules", "data_steward", "GET", "/forvaltning/rojandekontroll", None, 200),
    ("prevention-care", "care_provider", "GET", "/prevention", None, 200),
    ("review-queue", "research_office", "GET", "/reviews", None, 200),
    ("data-catalogue", "public", "GET", "/data", None, 200),
    ("permit-register", "public", "GET", "/data/tillstand", None, 200),
    ("access-researcher", "researcher", "GET", "/access", None, 200),
    ("access-application-form", "researcher", "GET", "/access/new", None, 200),
    ("access-request-form", "researcher", "GET", "/access/request", None, 200),
    ("access-steward", "data_steward", "GET", "/access", None, 200),
    ("agenda", "public", "GET", "/agenda", None, 200),
    ("agenda-strategy-group", "strategy", "GET", "/agenda", None, 200),
    ("ecosystem-directory", "public", "GET", "/ekosystem", None, 200),
    ("ecosystem-need-form", "researcher", "GET", "/ekosystem-behov/ny", None, 200),
    ("ecosystem-cases", "researcher", "GET", "/ekosystem-arenden", None, 200),
    ("ecosystem-inbox", "research_office", "GET", "/ekosystem-inkorg", None, 200),
    # errors
    ("not-found", "public", "GET", "/studier/{missing}", None, 404),
    ("forbidden", "resident", "GET", "/admin", None, 403),
    ("invalid", "public", "GET", "/studier/0", None, 422),
]


def concrete(path: str, site: dict[str, Any]) -> str:
    return path.format(study=site["ids"]["study"], missing=999999)

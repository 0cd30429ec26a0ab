"""Security property 2 on the web: every route is classified as showing counts of people or
not, and a count shown to anyone outside the study's own team has passed the disclosure policy.

``test_every_route_is_classified`` fails when a route is added without deciding whether it
emits counts of people (the CLI has the same test: ``unit/test_privacy_outputs.py``).
"""

from __future__ import annotations

from sqlalchemy import select

from brygga.db import session as db_session
from brygga.registry import service
from brygga.studies import matching
from brygga.studies.models import Invitation, Study
from brygga.web.app import routers
from tests.unit.test_privacy_outputs import small_counts

# Routes that show counts of people, and which ones.
EMITS_COUNTS = {
    ("GET", "/studies/{study_id}"): "the recruitment funnel; the saved feasibility answer",
    ("POST", "/studies/{study_id}/submit"): "feasibility on submission (saved, then shown)",
    ("POST", "/studies/{study_id}/feasibility"): "feasibility (saved, then shown)",
    ("GET", "/api/studies"): "each study's saved feasibility answer",
    ("GET", "/api/studies/{study_id}"): "the saved feasibility answer",
    ("GET", "/api/studies/{study_id}/funnel"): "the recruitment funnel",
    ("GET", "/prevention/{slug}"): "eligible and invited per care unit (ProgramPlan.summary)",
    ("GET", "/prevention/{slug}/jamlikhet"): "need and reach by quintile and municipality",
    ("GET", "/data"): "each dataset's population (privacy.gate.single)",
    ("GET", "/data/catalogue.ttl"): "the catalogue's populations, disclosed",
    ("GET", "/data/catalogue.jsonld"): "the catalogue's populations, disclosed",
    ("POST", "/api/studies/{study_id}/feasibility"): "feasibility",
}
# Routes that show no counts of people (forms, one's own data, identities for the team after
# "interested", counts of questions rather than people, redirects).
NO_POPULATION_COUNTS = {
    ("GET", "/"), ("GET", "/healthz"), ("GET", "/lang/{code}"), ("GET", "/login"),
    ("POST", "/login/demo"), ("GET", "/login/oidc"), ("GET", "/login/oidc/staff"),
    ("GET", "/login/oidc/callback"), ("POST", "/login/staff"), ("POST", "/logout"),
    ("GET", "/portal"), ("POST", "/portal/join"), ("POST", "/portal/profile"),
    ("POST", "/portal/consent/{kind}"), ("POST", "/portal/pause"),
    ("POST", "/portal/invitations/{invitation_id}"), ("GET", "/portal/export"),
    ("POST", "/portal/delete"), ("GET", "/portal/search"), ("GET", "/studies"),
    ("GET", "/studies/new"), ("POST", "/studies"), ("POST", "/studies/import"),
    ("POST", "/studies/{study_id}/review"), ("GET", "/studies/{study_id}/contacts"),
    ("POST", "/invitations/{invitation_id}/outcome"), ("GET", "/admin"),
    ("POST", "/admin/organizations"), ("POST", "/admin/staff"),
    ("POST", "/admin/staff/{staff_id}/password"), ("POST", "/admin/staff/{staff_id}/deactivate"),
    ("POST", "/api/studies"), ("GET", "/api/feasibility/flags"),
    ("POST", "/api/feasibility/flags/{flag_id}/reviewed"), ("GET", "/api/me"),
    ("PUT", "/api/me/profile"), ("POST", "/api/me/consents/{kind}"),
    # Stewards: audit records, privacy budgets (epsilon spent) and settings, not people.
    ("GET", "/forvaltning"), ("GET", "/forvaltning/logg"), ("POST", "/forvaltning/logg/verifiera"),
    ("GET", "/forvaltning/budgetar"), ("POST", "/forvaltning/budgetar"),
    ("GET", "/forvaltning/rojandekontroll"),
    # Care units: the program list (no counts); the worklist and its export are the unit's
    # own identifiable list (audited, legal basis), not counts.
    ("GET", "/prevention"), ("GET", "/prevention/{slug}/lista"),
    ("POST", "/prevention/{slug}/lista"), ("POST", "/prevention/{slug}/lista.csv"), ("GET", "/api/docs"),
}  # fmt: skip
# The public e-service: studies and texts (the catalogue counts studies, never people), one's
# own interest and consents, the self-check's points for the answers given.
NO_POPULATION_COUNTS |= {
    ("GET", "/studier"), ("GET", "/studier/{study_id}"), ("GET", "/studier/{study_id}/intresse"),
    ("POST", "/studier/{study_id}/intresse"), ("GET", "/studier/{study_id}/anmald"),
    ("GET", "/om"), ("GET", "/kontakt"), ("GET", "/om-personuppgifter"), ("GET", "/cookies"),
    ("GET", "/tillganglighet"), ("GET", "/egenkontroll"), ("POST", "/egenkontroll"),
    ("GET", "/konto-raderat"), ("GET", "/portal/samtycken"),
}  # fmt: skip


def test_every_route_is_classified() -> None:
    routes = {
        (method, route.path)
        for router in routers()
        for route in router.routes
        for method in route.methods - {"HEAD"}
    }
    assert routes == set(EMITS_COUNTS) | NO_POPULATION_COUNTS, (
        "a route was added or removed: classify it here (does it show counts of people?)"
    )
    assert not set(EMITS_COUNTS) & NO_POPULATION_COUNTS


def test_the_funnel_outside_the_team_is_disclosed_and_exact_only_for_the_team(site) -> None:
    """One volunteer matched and invited: the research office sees ``<8``, never ``1``; the
    study's own team sees its exact funnel, labelled as such."""
    study_id = site["ids"]["study"]
    with db_session(site["url"]) as s:
        study = s.get(Study, study_id)
        matching.match_study(s, study, lambda _study: None)
        resident = service.by_ref(s, site["ids"]["resident_ref"])
        matched = s.scalars(select(Invitation).where(Invitation.resident_id == resident.id)).all()
    assert len(matched) == 1  # a count of 1 that must not be shown outside the team

    office = site["client"]("research_office").get(f"/api/studies/{study_id}/funnel").json()
    assert small_counts(office) == []
    assert office["stages"]["matched"] == {"value": None, "display": "<8"}
    assert office["disclosure"] != "exact (study team)"
    page = site["client"]("research_office").get(f"/studies/{study_id}").text
    assert "<8" in page or "&lt;8" in page

    team = site["client"]("researcher").get(f"/api/studies/{study_id}/funnel").json()
    assert team["stages"]["matched"]["value"] == 1
    assert team["disclosure"] == "exact (study team)"

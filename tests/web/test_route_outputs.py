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
    ("POST", "/api/studies/{study_id}/feasibility"): "feasibility",
    # The public data catalogue (web/test_data_pages.py): each region's number of people.
    ("GET", "/data"): "the number of people per region (gate.single)",
    ("GET", "/data/catalogue.ttl"): "the number of people per region (gate.single)",
    ("GET", "/data/catalogue.jsonld"): "the number of people per region (gate.single)",
    # Health-data access (web/test_access_web.py checks the counts it shows).
    ("GET", "/api/access/applications"): "each application's saved feasibility count",
    ("GET", "/api/access/applications/{application_id}"): "the saved feasibility count",
    ("POST", "/api/access/applications"): "the application (no count until submitted)",
    ("PUT", "/api/access/applications/{application_id}"): "the application",
    ("POST", "/api/access/applications/{application_id}/submit"): "feasibility on submission",
    ("POST", "/api/access/feasibility"): "the cohort's disclosed size",
    ("POST", "/api/access/applications/{application_id}/decision"): "the saved count",
    ("GET", "/api/access/permits/{permit_id}"): "its outputs' disclosed sizes",
    ("POST", "/api/access/permits/{permit_id}/extract"): "the extract's disclosed size",
    ("POST", "/api/access/requests"): "a data request's tables (or an output to check)",
    ("GET", "/api/access/outputs/{output_id}"): "the output's disclosed sizes",
    ("POST", "/api/access/outputs/{output_id}/release"): "the output's disclosed sizes",
    ("GET", "/api/access/outputs/{output_id}/files/{name}"): "a released, checked file",
    ("GET", "/access"): "each application's saved feasibility count",
    ("POST", "/access/new"): "the cohort's disclosed size",
    ("GET", "/access/applications/{application_id}"): "feasibility, outputs' disclosed sizes",
    ("POST", "/access/applications/{application_id}/submit"): "feasibility on submission",
    ("POST", "/access/applications/{application_id}/decision"): "the saved count (errors)",
    ("POST", "/access/permits/{permit_id}/extract"): "redirects to the application's page",
    ("POST", "/access/outputs/{output_id}/release"): "redirects (errors: the application)",
    ("GET", "/access/outputs/{output_id}/files/{name}"): "a released, checked file",
    ("POST", "/access/request"): "a data request's tables (or an output to check)",
    ("POST", "/api/access/permits/{permit_id}/revoke"): "the permit's outputs' disclosed sizes",
    ("POST", "/access/permits/{permit_id}/revoke"): "redirects (errors: the application)",
    # A form on the study's page sent back with its errors: the page again, as its GET shows it.
    ("POST", "/studies/{study_id}/review"): "the study's page again (review errors)",
    ("POST", "/studies/{study_id}/checklist"): "the study's page again (checklist errors)",
    ("POST", "/studies/{study_id}/documents"): "the study's page again (upload errors)",
    ("POST", "/studies/{study_id}/comments"): "the study's page again (comment errors)",
    ("POST", "/studies/{study_id}/return"): "the study's page again (return errors)",
    ("GET", "/agenda"): "the agenda's KPI series (tests/web/test_agenda_pages.py)",
    ("GET", "/halsolaget"): "prevalence and SCORE2 categories (tests/web/test_agenda_pages.py)",
    ("POST", "/api/ecosystem/needs/{need_id}/inquiries"): "a site feasibility inquiry's region "
    "figures (eligible, volunteers, overlaps), through the gate when attached",
    ("GET", "/api/ecosystem/inquiries/{inquiry_id}"): "the attached figures (saved disclosed)",
    ("GET", "/api/ecosystem/cases"): "the attached figures of each inquiry (saved disclosed)",
    ("GET", "/api/ecosystem/inbox"): "the attached figures shown to the sites (saved disclosed)",
    ("GET", "/ekosystem-arenden"): "the attached figures of each inquiry (saved disclosed)",
    ("GET", "/ekosystem-inkorg"): "the attached figures shown to the sites (saved disclosed)",
}
# Routes that show no counts of people (forms, one's own data, identities for the team after
# "interested", counts of questions rather than people, redirects).
NO_POPULATION_COUNTS = {
    ("GET", "/"), ("GET", "/healthz"), ("GET", "/lang/{code}"), ("GET", "/login"),
    ("POST", "/login/demo"), ("GET", "/login/oidc"), ("GET", "/login/oidc/staff"),
    ("GET", "/login/oidc/callback"), ("POST", "/login/staff"), ("POST", "/logout"),
    ("GET", "/portal"), ("GET", "/portal/profil"), ("POST", "/portal/join"), ("POST", "/portal/profile"),
    ("POST", "/portal/consent/{kind}"), ("POST", "/portal/pause"),
    ("POST", "/portal/invitations/{invitation_id}"), ("GET", "/portal/export"),
    ("POST", "/portal/delete"), ("GET", "/portal/search"), ("GET", "/studies"),
    ("GET", "/studies/new"), ("POST", "/studies"), ("POST", "/studies/import"),
    ("GET", "/studies/{study_id}/contacts"),
    ("GET", "/studies/{study_id}/edit"), ("POST", "/studies/{study_id}/edit"),
    ("GET", "/studies/{study_id}/criteria"), ("POST", "/studies/{study_id}/criteria"),
    ("GET", "/studies/{study_id}/criteria/rule"), ("GET", "/studies/{study_id}/criteria/codes"),
    ("GET", "/studies/{study_id}/documents/{document_id}"),
    ("GET", "/reviews"),  # studies and days waited, no people
    ("POST", "/invitations/{invitation_id}/outcome"), ("GET", "/admin"),
    ("POST", "/admin/organizations"), ("POST", "/admin/staff"),
    ("POST", "/admin/staff/{staff_id}/password"), ("POST", "/admin/staff/{staff_id}/deactivate"),
    ("POST", "/api/studies"), ("GET", "/api/feasibility/flags"),
    ("POST", "/api/feasibility/flags/{flag_id}/reviewed"), ("GET", "/api/me"),
    ("PUT", "/api/me/profile"), ("POST", "/api/me/consents/{kind}"),
    # The ecosystem: directory entries, needs and inquiries (counts of entries, not of people).
    ("GET", "/ekosystem"), ("GET", "/ekosystem/{slug}"), ("GET", "/ekosystem-behov/ny"),
    ("POST", "/ekosystem-behov"), ("GET", "/ekosystem-behov/{need_id}"),
    ("POST", "/ekosystem-behov/{need_id}/forfragan"),
    ("POST", "/ekosystem-inkorg/{recipient_id}"),
    ("GET", "/api/ecosystem"), ("GET", "/api/ecosystem/entries/{slug}"),
    ("POST", "/api/ecosystem/match"), ("POST", "/api/ecosystem/needs"),
    ("PUT", "/api/ecosystem/inquiries/{inquiry_id}/milestones/{name}"),
    ("POST", "/api/ecosystem/inbox/{recipient_id}"), ("GET", "/api/ecosystem/sites"),
    ("POST", "/ekosystem/{slug}/bokning"), ("POST", "/ekosystem/{slug}/tider"), ("POST", "/ekosystem-bokningar/{booking_id}"),
    ("GET", "/api/ecosystem/entries/{slug}/slots"), ("POST", "/api/ecosystem/entries/{slug}/slots"),
    ("POST", "/api/ecosystem/slots/{slot_id}/bookings"), ("GET", "/api/ecosystem/bookings"),
    ("POST", "/api/ecosystem/bookings/{booking_id}"),
    ("POST", "/ekosystem-arenden/{inquiry_id}/resultat"),
    ("PUT", "/api/ecosystem/inquiries/{inquiry_id}/outcome"),
    # Stewards: audit records, privacy budgets (epsilon spent) and settings, not people.
    ("GET", "/forvaltning"), ("GET", "/forvaltning/logg"), ("POST", "/forvaltning/logg/verifiera"),
    ("GET", "/forvaltning/budgetar"), ("POST", "/forvaltning/budgetar"),
    ("GET", "/forvaltning/rojandekontroll"),
    # Care units: the program list (no counts); the worklist and its export are the unit's
    # own identifiable list (audited, legal basis), not counts.
    ("GET", "/prevention"), ("GET", "/prevention/{slug}/lista"),
    ("POST", "/prevention/{slug}/lista"), ("POST", "/prevention/{slug}/lista.csv"), ("GET", "/api/docs"),
    ("GET", "/api/access/register"), ("GET", "/data/tillstand"), ("GET", "/access/new"),
    ("GET", "/access/request"),
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

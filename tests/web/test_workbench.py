"""The staff workbench: editing a study, the criteria builder with code search, feasibility
with charts and tables, and the research office's review (queue, checklist, documents,
comments, return for changes, history), every form re-rendered with its errors."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date

import pytest

from brygga import audit
from brygga.cohort.criteria import criteria_from_text
from brygga.db import session as db_session
from brygga.studies import builder, registration, review, staff
from brygga.studies.models import Study
from tests.spec.conftest import write_tables
from tests.web.conftest import study_form
from tests.web.test_differencing import with_region, write_region


def new_study(c, **kw) -> int:
    r = c.post("/studies", data=study_form(**kw))
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


def stored(site, study_id: int) -> Study:
    with db_session(site["url"]) as s:
        study = s.get(Study, study_id)
        s.expunge(study)
        return study


def test_a_researcher_edits_a_draft_and_bad_input_comes_back_with_its_errors(site):
    c = site["client"]("researcher")
    study_id = new_study(c)
    page = c.get(f"/studies/{study_id}/edit")
    assert page.status_code == 200 and "Metformin och minne" in page.text
    assert f'action="/studies/{study_id}/edit"' in page.text
    bad = c.post(f"/studies/{study_id}/edit", data=study_form(title_sv="M", ethics_number="x"))
    assert bad.status_code == 422
    assert "govuk-error-summary" in bad.text and 'href="#title_sv"' in bad.text
    assert 'value="M"' in bad.text  # what was typed is kept
    assert stored(site, study_id).title_sv == "Metformin och minne"
    ok = c.post(f"/studies/{study_id}/edit", data=study_form(title_sv="Metformin och sömn"))
    assert ok.status_code == 303
    assert stored(site, study_id).title_sv == "Metformin och sömn"
    # Not another organization's researcher, and not an approved study.
    outsider = site["client"]("outsider")
    assert outsider.get(f"/studies/{study_id}/edit").status_code == 404
    assert c.get(f"/studies/{site['ids']['study']}/edit").status_code == 400


def builder_post(**rows) -> dict:
    data = {"name": "Diabetes", "age_min": "40", "age_max": "80", "sex": ["female", "male"]}
    return data | rows


def test_the_builder_saves_criteria_that_read_back_into_the_same_rows(site):
    c = site["client"]("researcher")
    study_id = new_study(c)
    page = c.get(f"/studies/{study_id}/criteria")
    assert page.status_code == 200
    assert 'value="E11"' in page.text  # the study's YAML shown as builder rows
    form = builder_post(**{
        "rules-0-side": "include", "rules-0-kind": "condition", "rules-0-vocabulary": "ICD10",
        "rules-0-codes": "E11", "rules-0-days": "3650",
        "rules-1-side": "include", "rules-1-kind": "measurement", "rules-1-vocabulary": "",
        "rules-1-codes": "HbA1c", "rules-1-value_min": "53", "rules-1-latest": "yes",
        "rules-2-side": "exclude", "rules-2-kind": "drug", "rules-2-vocabulary": "ATC",
        "rules-2-codes": "A10AE04",
        "rules-3-side": "include", "rules-3-kind": "drug", "rules-3-codes": "",  # blank: dropped
    })  # fmt: skip
    r = c.post(f"/studies/{study_id}/criteria", data=form)
    assert r.status_code == 303, r.text
    text = stored(site, study_id).criteria_yaml
    criteria = criteria_from_text(text)
    assert [type(r).__name__ for r in criteria.include] == ["ConditionRule", "MeasurementRule"]
    again = c.get(f"/studies/{study_id}/criteria?saved=true")
    assert "Kriterierna är sparade" in again.text
    rows = builder.form_from_criteria(criteria)
    assert rows is not None
    for i, row in enumerate(rows["rules"]):
        assert (
            f'id="rules-{i}-codes" name="rules-{i}-codes" type="text" value="{row["codes"]}"'
            in again.text
        )


def test_builder_errors_come_back_on_the_form(site):
    c = site["client"]("researcher")
    study_id = new_study(c)
    before = stored(site, study_id).criteria_yaml
    r = c.post(f"/studies/{study_id}/criteria", data=builder_post(**{
        "age_min": "90", "age_max": "20", "rules-0-kind": "condition",
        "rules-0-vocabulary": "ICD10", "rules-0-codes": "not a code", "rules-0-side": "include",
    }))  # fmt: skip
    assert r.status_code == 422
    assert 'href="#age_max"' in r.text and 'href="#rules-0-codes"' in r.text
    assert 'aria-invalid="true"' in r.text
    assert stored(site, study_id).criteria_yaml == before
    # "Add a rule" without JavaScript: the form again, one row more, nothing saved.
    r = c.post(f"/studies/{study_id}/criteria", data=builder_post(**{
        "action": "add", "rules-0-kind": "condition", "rules-0-codes": "E11",
        "rules-0-vocabulary": "ICD10", "rules-0-side": "include"}))  # fmt: skip
    assert r.status_code == 200 and 'id="rules-1-codes"' in r.text


def test_htmx_adds_rule_rows_and_searches_codes(site):
    c = site["client"]("researcher")
    study_id = new_study(c)
    row = c.get(f"/studies/{study_id}/criteria/rule?n=3")
    assert 'id="rules-3-codes"' in row.text and 'hx-swap-oob="true"' in row.text
    assert "criteria/rule?n=4" in row.text
    hits = c.get(f"/studies/{study_id}/criteria/codes?row=0&q=metformin&rules-0-kind=drug")
    assert 'data-code="A10BA02"' in hits.text and 'data-vocabulary="ATC"' in hits.text
    labs = c.get(f"/studies/{study_id}/criteria/codes?row=2&q=hba1c&rules-2-kind=measurement")
    assert 'data-code="HbA1c"' in labs.text and 'data-row="2"' in labs.text


def test_code_search_reads_the_concept_table_of_an_imported_region(site, tmp_path):
    region = write_tables(tmp_path / "omop", {
        "concept": [
            {"concept_id": 201826, "concept_name": "Type 2 diabetes mellitus",
             "domain_id": "Condition", "vocabulary_id": "SNOMED", "concept_class_id": "Clinical Finding",
             "standard_concept": "S", "concept_code": "44054006",
             "valid_start_date": date(2000, 1, 1), "valid_end_date": date(2099, 12, 31)},
        ]}, region="omop", source="omop-import")  # fmt: skip
    hits = builder.search_codes("condition", "mellitus", region)
    assert any(h.code == "201826" and h.vocabulary == "OMOP" for h in hits)
    assert builder.search_codes("drug", "mellitus", region) == []  # another domain
    criteria = criteria_from_text(
        "include:\n  - condition: {codes: ['201826'], vocabulary: OMOP}\n"
    )
    names = builder.concept_names(region, criteria)
    assert names == {"201826": "Type 2 diabetes mellitus"}


@pytest.mark.slow
def test_feasibility_shows_attrition_and_breakdowns_as_charts_with_tables(site, tmp_path):
    with_region(site, write_region(tmp_path / "region", "synthetic"))
    c = site["client"]("researcher")
    yaml_text = ("index_date: 2025-06-15\ndemographics:\n  age: {min: 40}\ninclude:\n"
                 "  - measurement: {codes: [HbA1c], value: {min: 40}}\n")  # fmt: skip
    study_id = new_study(c, criteria_yaml=yaml_text)
    r = c.post(f"/studies/{study_id}/feasibility")
    assert r.status_code == 303, r.text
    page = c.get(f"/studies/{study_id}").text
    figures = re.findall(r'<figure class="brygga-chart">', page)
    assert len(figures) == 5  # attrition, sex, age band, municipality, funnel
    assert page.count('role="img"') == 5
    assert "Demografi: ålder 40 år och äldre" in page
    assert "Inkludera: mätning eller labbvärde NPU NPU27300" in page
    assert "Malmö" in page and "Lund" in page  # municipalities by name
    assert "kvinnor" in page and "40–49 år" in page
    assert "Demographics: age" not in page  # no English step in a Swedish page
    # Every figure shown is a disclosed one: the stored answer's displays.
    saved = stored(site, study_id).feasibility
    for cell in saved["breakdowns"]["sex"].values():
        assert str(cell["display"]) in page
    # The question was counted once for all of it.
    with db_session(site["url"]) as s:
        from brygga.privacy.models import FeasibilityQuestion

        assert s.query(FeasibilityQuestion).filter_by(study_id=study_id).count() == 1


def test_submitting_without_an_ethics_number_names_the_field_on_the_page(site):
    c = site["client"]("researcher")
    study_id = new_study(c, ethics_number="")
    r = c.post(f"/studies/{study_id}/submit")
    assert r.status_code == 422
    assert "govuk-error-summary" in r.text and 'id="ethics_number-error"' in r.text
    assert stored(site, study_id).status == "draft"


@pytest.mark.slow  # about 4 s: the whole review with an upload and a download
def test_review_return_comment_resubmit_approve(site):
    researcher = site["client"]("researcher")
    office = site["client"]("research_office")
    study_id = new_study(researcher, drug_trial="yes", eu_ct_number="2024-512345-12-00")
    assert researcher.post(f"/studies/{study_id}/submit").status_code == 303

    queue = office.get("/reviews")
    assert queue.status_code == 200 and f'href="/studies/{study_id}"' in queue.text
    assert "0 dagar" in queue.text
    assert office.get("/reviews?status=approved").text.count(f'href="/studies/{study_id}"') == 0
    assert f'href="/studies/{study_id}"' in office.get("/reviews?area=diabetes").text
    assert f'href="/studies/{study_id}"' not in office.get("/reviews?waiting=3").text
    bad_filter = office.get("/reviews?status=nonsense&waiting=x")
    assert bad_filter.status_code == 422 and 'href="#waiting"' in bad_filter.text

    # The checklist: a ticked ethics approval needs its decision date.
    r = office.post(f"/studies/{study_id}/checklist", data={"ethics_checked": "yes"})
    assert r.status_code == 422 and 'href="#ethics_decision_date"' in r.text
    r = office.post(f"/studies/{study_id}/checklist", data={
        "ethics_checked": "yes", "ethics_decision_date": "2024-11-02", "eu_ct_checked": "yes",
        "insurance": "Läkemedelsförsäkringen", "protocol_version": "2.1"})  # fmt: skip
    assert r.status_code == 303

    # A document, stored with its hash; both sides can read it.
    content = b"%PDF-1.4 protocol v2.1"
    r = researcher.post(f"/studies/{study_id}/documents", data={"kind": "protocol"},
                        files={"document": ("protokoll v2.1.pdf", content, "application/pdf")})  # fmt: skip
    assert r.status_code == 303, r.text
    page = office.get(f"/studies/{study_id}").text
    digest = hashlib.sha256(content).hexdigest()
    assert digest in page and "protokoll v2.1.pdf" in page
    link = re.search(rf"/studies/{study_id}/documents/(\d+)", page)[0]
    download = office.get(link)
    assert download.content == content and download.headers["x-content-sha256"] == digest
    assert "attachment" in download.headers["content-disposition"]
    empty = office.post(f"/studies/{study_id}/documents", data={"kind": "protocol"},
                        files={"document": ("tom.pdf", b"", "application/pdf")})  # fmt: skip
    assert empty.status_code == 422 and 'id="document-error"' in empty.text

    # Returned for changes, with a comment; without one, the page says what is missing.
    r = office.post(f"/studies/{study_id}/return", data={"reason": " "})
    assert r.status_code == 422 and 'href="#reason"' in r.text
    r = office.post(f"/studies/{study_id}/return", data={"reason": "Ange protokollversion 2.2."})
    assert r.status_code == 303
    assert stored(site, study_id).status == "returned"
    page = researcher.get(f"/studies/{study_id}").text
    assert "Ange protokollversion 2.2." in page and "Återsänd för ändringar" in page
    assert f'href="/studies/{study_id}/edit"' in page

    # The researcher answers in the thread, edits and submits again.
    assert (
        researcher.post(f"/studies/{study_id}/comments", data={"comment": "Klart."}).status_code
        == 303
    )
    r = researcher.post(f"/studies/{study_id}/comments", data={"comment": ""})
    assert r.status_code == 422 and 'href="#comment"' in r.text
    edited = study_form(title_sv="Metformin och minne v2.2", drug_trial="yes",
                        eu_ct_number="2024-512345-12-00")  # fmt: skip
    assert researcher.post(f"/studies/{study_id}/edit", data=edited).status_code == 303
    assert stored(site, study_id).status == "returned"
    assert researcher.post(f"/studies/{study_id}/submit").status_code == 303
    assert researcher.get(f"/studies/{study_id}/edit").status_code == 400  # submitted again

    # A rejection needs a reason: the page says so; then the office approves.
    r = office.post(f"/studies/{study_id}/review", data={"decision": "reject", "reason": ""})
    assert r.status_code == 422 and 'href="#reason"' in r.text
    r = office.post(f"/studies/{study_id}/review", data={"decision": "approve"})
    assert r.status_code == 303
    page = office.get(f"/studies/{study_id}").text
    history = page[page.index('id="history"') :]
    for what in ("Inskickad för granskning", "Återsänd för ändringar", "Godkänd"):
        assert what in history
    assert history.index("Återsänd för ändringar") < history.index("Godkänd")
    with db_session(site["url"]) as s:
        study = s.get(Study, study_id)
        actions = [h.action for h in review.history(s, study)]
        assert actions == ["submit", "return", "submit", "approve"]
        assert [m.body for m in review.comments(s, study)] == [
            "Ange protokollversion 2.2.",
            "Klart.",
        ]

    # All audited, with ids only: never a comment or a file.
    records = [json.loads(line) for line in audit.default_path().read_text().splitlines()]
    mine = [r for r in records if r.get("details", {}).get("study") == study_id]
    assert {r["action"] for r in mine} >= {"study.submit", "study.checklist", "study.document",
                                          "study.document.read", "study.return", "study.comment",
                                          "study.update", "study.approve"}  # fmt: skip
    assert "Klart." not in audit.default_path().read_text()


def test_only_the_office_and_the_team_take_part_in_a_review(site):
    researcher = site["client"]("researcher")
    study_id = new_study(researcher)
    researcher.post(f"/studies/{study_id}/submit")
    outsider = site["client"]("outsider")
    assert (
        outsider.post(f"/studies/{study_id}/comments", data={"comment": "hej"}).status_code == 404
    )
    care = site["client"]("care_provider")
    assert care.post(f"/studies/{study_id}/comments", data={"comment": "hej"}).status_code == 403
    assert researcher.post(f"/studies/{study_id}/return", data={"reason": "x"}).status_code == 403
    with db_session(site["url"]) as s:
        me = staff.get(s, site["accounts"]["researcher"])
        with pytest.raises(Exception, match="research office"):
            review.save_checklist(s, me, registration.get_study(s, study_id), {})


def test_feasibility_without_records_says_so_on_the_study_page(site):
    c = site["client"]("researcher")
    r = c.post(f"/studies/{site['ids']['study']}/feasibility")
    assert r.status_code == 400
    assert 'id="feasibility-error"' in r.text and 'href="#feasibility"' in r.text


def test_an_overlong_comment_comes_back_on_the_form(site):
    c = site["client"]("research_office")
    r = c.post(f"/studies/{site['ids']['study']}/comments", data={"comment": "x" * 5000})
    assert r.status_code == 422 and 'href="#comment"' in r.text


def test_an_overlong_review_reason_comes_back_on_the_form(site):
    researcher = site["client"]("researcher")
    study_id = new_study(researcher)
    researcher.post(f"/studies/{study_id}/submit")
    office = site["client"]("research_office")
    r = office.post(
        f"/studies/{study_id}/review", data={"decision": "reject", "reason": "x" * 2500}
    )
    assert r.status_code == 422 and 'href="#reason"' in r.text
    assert stored(site, study_id).status == "submitted"


def test_a_document_over_the_size_limit_comes_back_on_the_form(site):
    researcher = site["client"]("researcher")
    study_id = new_study(researcher)
    researcher.post(f"/studies/{study_id}/submit")
    big = b"x" * (review.MAX_DOCUMENT + 1)  # under the upload body limit, over the document's
    r = researcher.post(f"/studies/{study_id}/documents", data={"kind": "protocol"},
                        files={"document": ("stor.pdf", big, "application/pdf")})  # fmt: skip
    assert r.status_code == 422 and 'id="document-error"' in r.text
    with db_session(site["url"]) as s:
        assert review.documents(s, registration.get_study(s, study_id)) == []

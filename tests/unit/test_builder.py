"""The criteria builder: form rows -> criteria -> YAML -> form rows is the identity, errors
name their fields, code search finds catalogue codes, attrition steps speak Swedish."""

from __future__ import annotations

import pytest

from brygga.cohort.criteria import criteria_from_text
from brygga.forms import FormError
from brygga.messages import translate
from brygga.studies import builder

FORM = {
    "name": "T2D på metformin",
    "description": "",
    "index_date": "2026-01-01",
    "age_min": "40",
    "age_max": "75",
    "sex": ["female"],
    "rules": [
        {"side": "include", "kind": "condition", "vocabulary": "ICD10", "codes": "E11",
         "days": "3650", "min_count": "", "value_min": "", "value_max": "", "latest": ""},
        {"side": "include", "kind": "drug", "vocabulary": "ATC", "codes": "A10BA02",
         "days": "365", "min_count": "2", "value_min": "", "value_max": "", "latest": ""},
        {"side": "include", "kind": "measurement", "vocabulary": "", "codes": "HbA1c",
         "days": "365", "min_count": "", "value_min": "53", "value_max": "", "latest": "yes"},
        {"side": "exclude", "kind": "condition", "vocabulary": "ICD10", "codes": "I21, I22",
         "days": "", "min_count": "", "value_min": "", "value_max": "", "latest": ""},
        {"side": "exclude", "kind": "procedure", "vocabulary": "KVA", "codes": "FNG05",
         "days": "", "min_count": "", "value_min": "", "value_max": "", "latest": ""},
        {"side": "include", "kind": "measurement", "vocabulary": "LOINC", "codes": "8480-6",
         "days": "", "min_count": "", "value_min": "120.5", "value_max": "180", "latest": ""},
    ],
}  # fmt: skip


def by_side(form: dict) -> dict:
    """Rows grouped include-first, as criteria keep them (the form may interleave them)."""
    rows = sorted(form["rules"], key=lambda r: r["side"] != "include")
    return form | {"rules": rows}


def test_builder_yaml_builder_round_trip() -> None:
    criteria = builder.criteria_from_form(FORM)
    text = builder.criteria_yaml(criteria)
    again = criteria_from_text(text)
    assert again == criteria
    assert builder.form_from_criteria(again) == by_side(FORM)
    assert builder.criteria_from_form(builder.form_from_criteria(again)) == criteria


def test_yaml_beyond_the_builder_stays_yaml() -> None:
    grouped = criteria_from_text(
        "include:\n  - any_of:\n      - condition: {codes: [I10], vocabulary: ICD10}\n"
    )
    assert not builder.representable(grouped)
    municipal = criteria_from_text('demographics: {municipalities: ["1280"]}\n')
    assert builder.form_from_criteria(municipal) is None


def test_errors_name_the_fields() -> None:
    bad = FORM | {
        "name": "",
        "age_min": "80",
        "age_max": "70",
        "rules": [
            FORM["rules"][0] | {"codes": "not-a-code"},
            FORM["rules"][2] | {"value_min": "many"},
            FORM["rules"][1] | {"days": "-3"},
        ],
    }
    with pytest.raises(FormError) as caught:
        builder.criteria_from_form(bad)
    fields = caught.value.fields
    assert set(fields) == {"name", "age_max", "rules-0-codes", "rules-1-value_min", "rules-2-days"}
    assert fields["rules-0-codes"].template.startswith("contains a code that is not a")
    assert "not-a-code" not in fields["rules-0-codes"]  # the typed text is never repeated


def test_posted_rows_are_read_in_order_and_blank_rows_dropped() -> None:
    posted = {"name": "x", "rules-10-codes": "I10", "rules-10-kind": "condition",
              "rules-10-side": "exclude", "rules-2-codes": "E11", "rules-2-kind": "condition",
              "rules-2-side": "include", "rules-3-codes": "", "rules-3-kind": "drug"}  # fmt: skip
    form = builder.form_from_request(posted, lambda k: ["male", "other"] if k == "sex" else [])
    assert [r["codes"] for r in form["rules"]] == ["E11", "I10"]
    assert form["sex"] == ["male"]


def test_code_search_covers_the_catalogues() -> None:
    assert any(h.code == "E119" for h in builder.search_codes("condition", "diabet"))
    assert [h.code for h in builder.search_codes("drug", "metformin")] == ["A10BA02"]
    assert any(h.code == "HbA1c" for h in builder.search_codes("measurement", "a1c"))
    # Swedish names are searched too, and shown on Swedish pages; English on English ones.
    (hit,) = builder.search_codes("procedure", "koloskopi")
    assert (hit.code, hit.name("sv"), hit.name("en")) == ("UJF32", "Koloskopi", "Colonoscopy")
    assert not hit.english("sv")
    assert [h.code for h in builder.search_codes("condition", "hjärtinfarkt")] == ["I219"]
    assert [h.code for h in builder.search_codes("drug", "acetylsalicylsyra")] == ["B01AC06"]
    (lab,) = builder.search_codes("measurement", "kreatinin")
    assert lab.name("sv") == "P-Kreatinin (NPU NPU04998)"
    assert builder.search_codes("condition", "e") == []  # too short to search


def test_attrition_steps_in_swedish() -> None:
    criteria = builder.criteria_from_form(FORM)
    labels = builder.step_labels(criteria, lambda k: translate(k, "sv"), "sv")
    assert len(labels) == len(criteria.steps())
    assert labels[0] == "Demografi: ålder 40–75 år; kvinnor"
    assert labels[1].startswith("Inkludera: diagnos ICD10 E11")
    assert "de senaste 3650 dagarna" in labels[1]
    assert labels[4].endswith("med värde 120,5–180 någon gång före indexdatum")
    assert labels[5].startswith("Exkludera: diagnos ICD10 I21, ICD10 I22")
    english = builder.step_labels(criteria, lambda k: translate(k, "en"), "en")
    assert english[0] == "Demographics: age 40–75; women"


def test_attrition_steps_the_form_cannot_hold_speak_the_pages_language() -> None:
    # Groups, visits and windows after the index date are not rows of the form: their labels
    # are said as ``brygga criteria check`` says them, in the page's language.
    criteria = criteria_from_text(
        """
include:
  - drug: {codes: [A10BA02], within: {days_after: 90}}
  - any_of:
      - visit: {types: [inpatient], within: {days_before: 365}}
      - condition: {codes: [I21]}
exclude:
  - drug: {codes: [A10], within: {days_before: 3650, days_after: -1}}
"""
    )
    sv = builder.step_labels(criteria, lambda k: translate(k, "sv"), "sv")
    assert sv[1] == (
        "Inkludera: läkemedel med kod A10BA02 (ATC) från indexdatum till 90 dagar efter indexdatum"
    )
    assert sv[2].startswith("Inkludera: minst en av (besök (slutenvård) från 365 dagar före")
    # 3 650 with a no-break space, as Swedish groups thousands.
    assert sv[3].endswith("från 3\xa0650 dagar före indexdatum till 1 dag före indexdatum")
    en = builder.step_labels(criteria, lambda k: translate(k, "en"), "en")
    assert en[3].endswith("from 3,650 days before the index date to 1 day before the index date")
    for label in sv:  # not the engine's English description
        assert " days " not in label and "drug " not in label


def test_the_first_step_says_who_entered() -> None:
    # With one index date the first step is the population on it; with an entry, who entered
    # (the population step would claim a date the criteria do not use).
    entry = criteria_from_text(
        "entry: {event: {condition: {codes: [E11]}}, period: {from: 2015-01-01, to: 2020-12-31}}"
    )
    sv, en = (
        builder.population_label(entry, lambda k, lang=lang: translate(k, lang), lang, "2024-06-01")
        for lang in ("sv", "en")
    )
    assert sv == (
        "Kom med: den första posten någonsin med diagnos med kod E11 (ICD10), "
        "mellan 2015-01-01 och 2020-12-31"
    )
    assert en.startswith("Entered: the first record ever of diagnosis with code E11 (ICD10)")
    plain = criteria_from_text("index_date: 2024-06-01")
    label = builder.population_label(plain, lambda k: translate(k, "sv"), "sv", "2024-06-01")
    assert label == "Lever och finns i registren 2024-06-01"

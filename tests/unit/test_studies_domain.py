"""Pure domain logic of the resident service and the study front door (no database)."""

from __future__ import annotations

from datetime import date

import pytest

from brygga import identifiers
from brygga.cohort.criteria import parse_criteria
from brygga.errors import InputError
from brygga.registry import catalogue, geography
from brygga.studies import ctgov
from brygga.studies.selfreport import SelfReport, may_be_eligible, rule_truth

TODAY = date(2026, 1, 1)


# --- identifiers ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["19900101-0017", "199001010017", "900101-0017"])
def test_personnummer_normalizes(value):
    assert identifiers.personnummer(value) == "19900101-0017"


@pytest.mark.parametrize("value", ["19900101-0018", "19901301-0017", "abc", "", "19900161-0017"])
def test_personnummer_rejects_without_echoing(value):
    with pytest.raises(InputError) as exc:
        identifiers.personnummer(value, field="pnr")
    assert exc.value.message.startswith("pnr: not a valid personnummer")
    if value:
        assert value not in exc.value.message


def test_personnummer_sex_and_birth():
    assert identifiers.sex("19900101-0017") == "male"
    assert identifiers.sex("19900101-0025") == "female"
    assert identifiers.birth_date("19900101-0017") == date(1990, 1, 1)


def test_ethics_number():
    assert identifiers.ethics_number(" 2024-01234-01 ", today=TODAY) == "2024-01234-01"
    for bad in ("2024-1234-01", "24-01234-01", "2024-01234-1", "2018-01234-01", "2027-01234-01",
                "2024-00000-01", "2024-01234-00", "2024/01234/01"):  # fmt: skip
        with pytest.raises(InputError, match="ethics_number"):
            identifiers.ethics_number(bad, today=TODAY)


def test_eu_ct_number():
    assert identifiers.eu_ct_number("2024-512345-12-00", today=TODAY) == "2024-512345-12-00"
    for bad in ("2024-412345-12-00", "2021-512345-12-00", "2024-512345-12", "2024-51234-12-00",
                "2030-512345-12-00"):  # fmt: skip
        with pytest.raises(InputError, match="eu_ct_number"):
            identifiers.eu_ct_number(bad, today=TODAY)


# --- geography and catalogue ------------------------------------------------------------------


def test_distances_are_plausible():
    assert 14 < geography.distance_km("1280", "1281") < 19  # Malmö-Lund, about 17 km by road
    assert 55 < geography.distance_km("0180", "0188") < 65  # Stockholm-Norrtälje
    assert geography.distance_km("1280", "1280") == 0.0
    assert geography.distance_km("1280", "9999") is None
    assert geography.within_reach("1280", ["1283", "1281"], 20)
    assert not geography.within_reach("1280", ["1283"], 20)
    assert geography.within_reach("1280", ["1283"], None)
    assert not geography.within_reach(None, ["1283"], 500)


def test_every_synthetic_municipality_has_a_seat():
    from brygga.synth.targets import SKANE, STOCKHOLM

    codes = {m.code for r in (SKANE, STOCKHOLM) for m in r.municipalities}
    assert codes == set(geography.SEATS)


def test_catalogue_search_both_languages():
    assert [e.key for e in catalogue.search(catalogue.CONDITIONS, "diab")] == ["t1d", "t2d"]
    assert [e.key for e in catalogue.search(catalogue.CONDITIONS, "HEART FAIL")] == [
        "heart_failure"
    ]
    assert catalogue.search(catalogue.MEDICINES, "metf")[0].code == "A10BA02"
    assert catalogue.search(catalogue.CONDITIONS, "  ") == []


# --- self-reported matching -------------------------------------------------------------------


def person(**kw):
    base = dict(birth_date=date(1960, 6, 1), sex="female", municipality="1280")
    return SelfReport(**(base | kw))


def test_selfreport_demographics_and_conditions():
    c = parse_criteria(
        {
            "demographics": {"age": {"min": 40, "max": 75}, "sex": ["female"]},
            "include": [{"condition": {"codes": ["E11"], "vocabulary": "ICD10"}}],
            "exclude": [{"condition": {"codes": ["I21"], "vocabulary": "ICD10"}}],
        }
    )
    assert may_be_eligible(c, person(conditions=frozenset({"E119"})), TODAY)
    assert not may_be_eligible(c, person(), TODAY)  # no diabetes reported
    assert not may_be_eligible(c, person(sex="male", conditions=frozenset({"E119"})), TODAY)
    assert not may_be_eligible(c, person(conditions=frozenset({"E119", "I219"})), TODAY)
    young = person(birth_date=date(2000, 1, 2), conditions=frozenset({"E119"}))
    assert not may_be_eligible(c, young, TODAY)


def test_selfreport_unknown_never_excludes():
    c = parse_criteria(
        {
            "include": [{"measurement": {"codes": ["HbA1c"], "value": {"min": 53}}}],
            "exclude": [{"procedure": {"codes": ["FNG05"]}}],
        }
    )
    assert rule_truth(c.include[0], person()) is None
    assert may_be_eligible(c, person(), TODAY)


def test_selfreport_bmi_and_smoking():
    c = parse_criteria(
        {
            "include": [
                {"measurement": {"codes": ["BMI"], "value": {"min": 30}}},
                {"observation": {"codes": ["smoker"]}},
            ]
        }
    )
    heavy_smoker = person(height_cm=170, weight_kg=95, smoking="current")
    assert may_be_eligible(c, heavy_smoker, TODAY)
    assert not may_be_eligible(c, person(height_cm=170, weight_kg=60, smoking="current"), TODAY)
    assert not may_be_eligible(c, person(height_cm=170, weight_kg=95, smoking="never"), TODAY)
    assert may_be_eligible(c, person(), TODAY)  # nothing reported: unknown, not excluded


def test_selfreport_groups_use_kleene_logic():
    c = parse_criteria(
        {
            "include": [
                {
                    "at_least": {
                        "n": 2,
                        "of": [
                            {"condition": {"codes": ["I10"], "vocabulary": "ICD10"}},
                            {"drug": {"codes": ["C10AA"], "vocabulary": "ATC"}},
                            {"measurement": {"codes": ["SBP"], "value": {"min": 140}}},
                        ],
                    }
                }
            ]
        }
    )
    rule = c.include[0]
    assert (
        rule_truth(rule, person(conditions=frozenset({"I109"}), medicines=frozenset({"C10AA05"})))
        is True
    )
    assert rule_truth(rule, person(conditions=frozenset({"I109"}))) is None
    assert rule_truth(rule, person()) is False


# --- ClinicalTrials.gov import -----------------------------------------------------------------


@pytest.fixture(scope="module")
def ctgov_records(shared_dir):
    return ctgov.load_records(shared_dir / "data" / "ctgov" / "ctgov-v2-studies-100.json")


def test_ctgov_import_every_record(ctgov_records):
    imported = [ctgov.import_record(r) for r in ctgov_records]
    assert len(imported) == 100
    assert len({i.nct_id for i in imported}) == 100
    mapped = [i for i in imported if i.criteria.include]
    assert len(mapped) >= 95  # all leukaemia/lymphoma terms are recognised but one rare one
    assert {i.area for i in mapped} == {"haematology"}


def test_ctgov_import_fields(ctgov_records):
    first = ctgov.import_record(ctgov_records[0])
    assert first.nct_id == "NCT05756322"
    assert first.phase == "1/2"
    assert first.sponsor == "Lin BioScience, Inc"
    assert first.target_enrolment == 60
    assert first.recruitment_start == date(2023, 7, 20)
    assert first.criteria.demographics.age.min == 18
    assert first.criteria.demographics.sex is None  # ALL
    assert first.healthy_volunteers is False


def test_ctgov_ages_in_months_and_specific_terms():
    record = {
        "protocolSection": {
            "identificationModule": {"nctId": "NCT00000001", "briefTitle": "x"},
            "conditionsModule": {"conditions": ["Acute Myeloid Leukaemia", "Something rare"]},
            "eligibilityModule": {
                "sex": "FEMALE",
                "minimumAge": "6 Months",
                "maximumAge": "17 Years",
            },
        }
    }
    got = ctgov.import_record(record)
    assert got.criteria.demographics.age.min == 0
    assert got.criteria.demographics.age.max == 17
    assert got.criteria.demographics.sex == ["female"]
    assert got.criteria.include[0].condition.codes == ["C920"]
    assert got.unmapped == ["Something rare"]


def test_ctgov_rejects_other_json():
    with pytest.raises(InputError, match="not a ClinicalTrials"):
        ctgov.import_record({"hello": 1})
    bad_age = {
        "protocolSection": {
            "identificationModule": {"nctId": "NCT1"},
            "eligibilityModule": {"minimumAge": "eighteen"},
        }
    }
    with pytest.raises(InputError, match="minimumAge"):
        ctgov.import_record(bad_age)

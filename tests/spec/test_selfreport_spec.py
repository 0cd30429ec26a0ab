"""Self-report matching (``studies/selfreport.py``) answers the spec suite's criteria as the
records do, for the parts a self-report can tell.

Each test builds volunteers' self-reports, turns every report into the records that say the same
thing (a region: demographics from the registered birth date, sex and municipality; each reported
condition and medicine as one record, on ``RECORDED``; height, weight, BMI and smoking status as
one record each, on ``MEASURED``), and compares who the reference evaluator finds on those records
with who ``may_be_eligible`` keeps on the reports, and with the vectorized
``demographics_mask`` + ``health_holds`` that matching runs. Expected ids are written out by hand,
as ``(on the records, on the self-reports)``; where the two differ, the comment says why: a
self-report has no dates and only some kinds of facts, and what it cannot tell never excludes.
Index date: 2025-06-15 unless stated. Reference engine only: these are semantics, not engines.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from brygga.cohort.criteria import parse_criteria
from brygga.cohort.population import ymd
from brygga.cohort.reference import ReferenceEngine
from brygga.records import codes
from brygga.registry.catalogue import CONDITIONS, MEDICINES
from brygga.studies.selfreport import (
    SMOKING_CODES,
    SelfReport,
    demographics_hold,
    demographics_mask,
    health_holds,
    may_be_eligible,
)
from tests.spec.conftest import INDEX, build_region, event, person

RECORDED = date(2015, 3, 10)  # a reported condition or medicine: long ago, date unknown
MEASURED = INDEX - timedelta(days=14)  # a reported measurement or smoking status: current
LOINC = {key: codes.LABS[key].code for key in ("BMI", "weight", "height")}


def report(**kw: Any) -> SelfReport:
    base: dict[str, Any] = {"birth_date": date(1960, 3, 1), "sex": "female", "municipality": "0180"}
    for key in ("conditions", "medicines"):
        if key in kw:
            kw[key] = frozenset(kw[key])
    return SelfReport(**(base | kw))


def as_records(pid: int, r: SelfReport) -> tuple[dict[str, Any], list[tuple[str, dict]]]:
    """The records that say what the self-report says."""
    row = person(pid, born=r.birth_date, sex=r.sex, municipality=r.municipality)
    rows = [event("condition", pid, code, RECORDED) for code in sorted(r.conditions)]
    rows += [event("drug", pid, code, RECORDED) for code in sorted(r.medicines)]
    for key, code in LOINC.items():
        value = r.body(key)
        if value is not None:
            rows.append(event("measurement", pid, code, MEASURED, vocabulary="LOINC", value=value))
    if r.smoking is not None:
        rows.append(event("observation", pid, SMOKING_CODES[r.smoking], MEASURED))
    return row, rows


class Volunteers:
    """The same people as self-reports and as records; ``answers`` gives both id lists."""

    def __init__(self, tmp_path: Path, reports: dict[int, SelfReport]) -> None:
        self.reports = reports
        people, rows = [], []
        for pid, r in reports.items():
            row, events = as_records(pid, r)
            people.append(row)
            rows += events
        self.reference = ReferenceEngine.from_region(build_region(tmp_path / "r", people, rows))
        self.municipalities = sorted({r.municipality for r in reports.values()}, key=str)
        self.pids = np.array(list(reports))
        self.birth = np.array([ymd(r.birth_date) for r in reports.values()], dtype=np.int32)
        self.male = np.array([r.sex == "male" for r in reports.values()], dtype=bool)
        self.municipality = np.array(
            [self.municipalities.index(r.municipality) for r in reports.values()], dtype=np.int32
        )

    def answers(
        self, criteria: dict[str, Any], index_date: date = INDEX
    ) -> tuple[list[int], list[int]]:
        c = parse_criteria(criteria)
        on_records = self.reference.persons(c, index_date)
        one_by_one = sorted(
            pid for pid, r in self.reports.items() if may_be_eligible(c, r, index_date)
        )
        # What matching runs: the demographics for everyone at once, the rules per profile.
        demographics = demographics_mask(
            c, index_date, self.birth, self.male, self.municipality, self.municipalities
        )
        assert demographics.tolist() == [
            demographics_hold(c, r, index_date) for r in self.reports.values()
        ]
        rules = np.array([health_holds(c, r) for r in self.reports.values()], dtype=bool)
        assert sorted(self.pids[demographics & rules].tolist()) == one_by_one
        return on_records, one_by_one


def include(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"include": list(rules)}


def exclude(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"exclude": list(rules)}


def test_age_in_completed_years_sex_and_municipality(tmp_path):
    v = Volunteers(
        tmp_path,
        {
            1: report(birth_date=date(1960, 6, 15)),  # 65 today
            2: report(birth_date=date(1960, 6, 16), sex="male", municipality="1280"),  # 64
            3: report(birth_date=date(1960, 2, 29)),  # a leap-day birthday
            4: report(birth_date=date(1990, 12, 31), sex="male", municipality=None),  # 34
            5: report(birth_date=date(2007, 6, 15)),  # 18 today
            6: report(birth_date=date(2007, 6, 16), sex="male"),  # 17
        },
    )

    def demo(**d: Any) -> dict[str, Any]:
        return {"demographics": d}

    assert v.answers(demo(age={"min": 65})) == ([1, 3], [1, 3])
    assert v.answers(demo(age={"max": 64})) == ([2, 4, 5, 6], [2, 4, 5, 6])
    assert v.answers(demo(age={"min": 18, "max": 64})) == ([2, 4, 5], [2, 4, 5])
    assert v.answers(demo(age={"min": 64, "max": 64})) == ([2], [2])
    # Born on 29 February: 65 from 1 March in a common year, and on the 29th in a leap year.
    assert v.answers(demo(age={"min": 65}), date(2025, 2, 28)) == ([], [])
    assert v.answers(demo(age={"min": 65}), date(2025, 3, 1)) == ([3], [3])
    assert v.answers(demo(age={"min": 64}), date(2024, 2, 28)) == ([], [])
    assert v.answers(demo(age={"min": 64}), date(2024, 2, 29)) == ([3], [3])
    assert v.answers(demo(sex=["male"])) == ([2, 4, 6], [2, 4, 6])
    assert v.answers(demo(sex=["female", "male"])) == ([1, 2, 3, 4, 5, 6],) * 2
    assert v.answers(demo(municipalities=["0180"])) == ([1, 3, 5, 6], [1, 3, 5, 6])
    both = demo(sex=["male"], municipalities=["0180", "1280"], age={"min": 18})
    assert v.answers(both) == ([2], [2])


def test_catalogue_conditions_match_icd10_prefixes(tmp_path):
    """Each condition a resident can report is the code the records carry, so the language's
    prefix matching treats both alike."""
    keys = list(CONDITIONS)
    reports = {i: report(conditions={CONDITIONS[k].code}) for i, k in enumerate(keys, start=1)}
    reports[len(keys) + 1] = report()  # reported no condition
    reports[len(keys) + 2] = report(conditions={CONDITIONS["t2d"].code, CONDITIONS["mi"].code})
    v = Volunteers(tmp_path, reports)
    t2d, t1d, mi = (keys.index(k) + 1 for k in ("t2d", "t1d", "mi"))
    both = len(keys) + 2
    for key in keys:
        code = CONDITIONS[key].code
        having = sorted(
            pid for pid, r in reports.items() if any(c.startswith(code[:3]) for c in r.conditions)
        )
        assert having, key
        assert v.answers(include({"condition": {"codes": [code[:3]]}})) == (having, having), key
    assert v.answers(include({"condition": {"codes": ["E11"]}})) == ([t2d, both], [t2d, both])
    dotted = {"condition": {"codes": ["e11.9"], "vocabulary": "ICD10"}}
    assert v.answers(include(dotted)) == ([t2d, both], [t2d, both])
    # More specific than what was reported (E11.9): neither says yes.
    assert v.answers(include({"condition": {"codes": ["E110"]}})) == ([], [])
    two = include({"condition": {"codes": ["E11", "E10"]}})
    assert v.answers(two) == (sorted([t1d, t2d, both]),) * 2
    everyone = sorted(reports)
    no_mi = [p for p in everyone if p not in (mi, both)]
    assert v.answers(exclude({"condition": {"codes": ["I21", "I22"]}})) == (no_mi, no_mi)


def test_catalogue_medicines_match_atc_prefixes(tmp_path):
    keys = list(MEDICINES)
    v = Volunteers(
        tmp_path, {i: report(medicines={MEDICINES[k].code}) for i, k in enumerate(keys, start=1)}
    )
    pid = {k: keys.index(k) + 1 for k in keys}
    diabetes = sorted(pid[k] for k in ("metformin", "insulin", "sglt2", "glp1"))
    assert v.answers(include({"drug": {"codes": ["A10"]}})) == (diabetes, diabetes)
    assert v.answers(include({"drug": {"codes": ["A10BA"]}})) == ([pid["metformin"]],) * 2
    assert v.answers(include({"drug": {"codes": ["A10BA02"]}})) == ([pid["metformin"]],) * 2
    statins = sorted([pid["atorvastatin"], pid["simvastatin"]])
    assert v.answers(include({"drug": {"codes": ["C10AA"]}})) == (statins, statins)
    explicit = {"drug": {"codes": ["a10ba02"], "vocabulary": "ATC"}}
    assert v.answers(include(explicit)) == ([pid["metformin"]],) * 2
    assert v.answers(include({"drug": {"codes": ["A10BA03"]}})) == ([], [])


def test_bmi_weight_and_height_ranges_are_inclusive(tmp_path):
    v = Volunteers(
        tmp_path,
        {
            1: report(height_cm=170, weight_kg=95),  # BMI 32.9
            2: report(height_cm=200, weight_kg=120),  # BMI 30.0 exactly
            3: report(height_cm=200, weight_kg=119.96),  # BMI 29.99
            4: report(height_cm=180),  # no weight: BMI and weight unknown
            5: report(),  # nothing reported
        },
    )

    def body(key: str, **value: float) -> dict[str, Any]:
        spec: dict[str, Any] = {"codes": [key]}
        if value:
            spec["value"] = value
        return {"measurement": spec}

    # 4 and 5 did not say: kept on the self-report (the screening visit measures), while their
    # records (none) do not match. Unknowns never exclude.
    assert v.answers(include(body("BMI", min=30))) == ([1, 2], [1, 2, 4, 5])
    assert v.answers(include(body("BMI", max=30))) == ([2, 3], [2, 3, 4, 5])
    assert v.answers(include(body("BMI", min=30, max=30))) == ([2], [2, 4, 5])
    assert v.answers(include(body("BMI"))) == ([1, 2, 3], [1, 2, 3, 4, 5])
    assert v.answers(include(body("weight", min=95, max=119.96))) == ([1, 3], [1, 3, 4, 5])
    assert v.answers(include(body("height", min=180))) == ([2, 3, 4], [2, 3, 4, 5])
    assert v.answers(exclude(body("BMI", min=30))) == ([3, 4, 5], [3, 4, 5])
    # A reported value is current: inside a window around the index date, as its record is.
    windowed = {
        "measurement": {"codes": ["BMI"], "value": {"min": 30}, "within": {"days_before": 90}}
    }
    assert v.answers(exclude(windowed)) == ([3, 4, 5], [3, 4, 5])
    latest = {"measurement": {"codes": ["BMI"], "value": {"min": 30}, "latest": True}}
    assert v.answers(include(latest)) == ([1, 2], [1, 2, 4, 5])


def test_smoking_status(tmp_path):
    """A reported smoking status is one current status record; the records' ``latest`` among
    the statuses then says the same."""
    v = Volunteers(
        tmp_path,
        {
            1: report(smoking="current"),
            2: report(smoking="former"),
            3: report(smoking="never"),
            4: report(),  # did not say: kept on the self-report
        },
    )
    smoker = {"observation": {"codes": ["smoker"]}}
    assert v.answers(include(smoker)) == ([1], [1, 4])
    latest = {
        "observation": {
            "codes": ["smoker"],
            "latest": True,
            "among": ["smoker", "ex_smoker", "never_smoker"],
        }
    }
    assert v.answers(include(latest)) == ([1], [1, 4])
    ever = {"observation": {"codes": ["smoker", "ex_smoker"]}}
    assert v.answers(include(ever)) == ([1, 2], [1, 2, 4])
    assert v.answers(exclude(ever)) == ([3, 4], [3, 4])
    snomed = {"observation": {"codes": ["266919005"], "vocabulary": "SNOMED"}}
    assert v.answers(include(snomed)) == ([3], [3, 4])


def test_groups_any_all_at_least_and_nesting(tmp_path):
    hypertension, t2d, af = (CONDITIONS[k].code for k in ("hypertension", "t2d", "af"))
    v = Volunteers(
        tmp_path,
        {
            1: report(conditions={hypertension}),
            2: report(conditions={t2d}),
            3: report(conditions={hypertension, t2d}),
            4: report(conditions={hypertension, t2d, af}),
            5: report(conditions={af}),
            6: report(),
        },
    )
    i10, e11, i48 = ({"condition": {"codes": [c]}} for c in ("I10", "E11", "I48"))
    assert v.answers(include({"any_of": [i10, e11]})) == ([1, 2, 3, 4],) * 2
    assert v.answers(include({"all_of": [i10, e11]})) == ([3, 4],) * 2
    assert v.answers(include({"at_least": {"n": 2, "of": [i10, e11, i48]}})) == ([3, 4],) * 2
    assert v.answers(include({"at_least": {"n": 1, "of": [i10, i48]}})) == ([1, 3, 4, 5],) * 2
    nested = include({"any_of": [{"all_of": [i10, e11]}, i48]})
    assert v.answers(nested) == ([3, 4, 5],) * 2
    assert v.answers(include({"at_least": {"n": 2, "of": [i10, i10]}})) == ([1, 3, 4],) * 2
    assert v.answers(exclude({"any_of": [e11, i48]})) == ([1, 6],) * 2
    # With a rule a self-report cannot tell (a procedure): unknown counts towards "at least"
    # on the self-report, never on the records (no such record).
    kva = {"procedure": {"codes": ["FNG05"]}}
    assert v.answers(include({"at_least": {"n": 2, "of": [i10, e11, kva]}})) == (
        [3, 4],
        [1, 2, 3, 4],
    )
    assert v.answers(include({"all_of": [i10, kva]})) == ([], [1, 3, 4])


def test_demographics_include_and_exclude_in_combination(tmp_path):
    t2d, mi, metformin = CONDITIONS["t2d"].code, CONDITIONS["mi"].code, MEDICINES["metformin"].code
    born = {1: 1960, 2: 1970, 3: 1950, 4: 1960, 5: 1970, 6: 1950}
    health = {
        1: {"conditions": {t2d}},
        2: {"conditions": {t2d, mi}},
        3: {"conditions": {t2d}, "medicines": {metformin}},
        4: {"conditions": {t2d}, "medicines": {metformin}, "sex": "male"},
        5: {"conditions": {t2d}},
        6: {"conditions": {mi}},
    }
    v = Volunteers(
        tmp_path, {p: report(birth_date=date(y, 1, 1), **health[p]) for p, y in born.items()}
    )
    criteria: dict[str, Any] = {
        "demographics": {"age": {"min": 60}},
        "include": [{"condition": {"codes": ["E11"]}}],
        "exclude": [{"condition": {"codes": ["I21", "I22"]}}],
    }
    assert v.answers(criteria) == ([1, 3, 4],) * 2
    criteria["exclude"].append({"drug": {"codes": ["A10BA"]}})
    assert v.answers(criteria) == ([1],) * 2
    criteria["demographics"]["sex"] = ["male"]
    criteria["exclude"].pop()
    assert v.answers(criteria) == ([4],) * 2


def test_what_a_self_report_cannot_tell_never_excludes(tmp_path):
    """Labs, procedures, visits, death, OMOP concepts, other vocabularies: unknown on a
    self-report, so an include keeps everyone (the records: nobody, having no such record) and an
    exclude keeps everyone (as the records do)."""
    v = Volunteers(tmp_path, {1: report(conditions={CONDITIONS["t2d"].code}), 2: report()})
    unknowable = [
        {"measurement": {"codes": ["HbA1c"], "value": {"min": 53}}},
        {"procedure": {"codes": ["FNG05"]}},
        {"visit": {}},
        {"death": {"within": {"days_after": 30}}},
        {"condition": {"codes": ["201826"], "vocabulary": "OMOP"}},
        {"condition": {"codes": ["44054006"], "vocabulary": "SNOMED"}},
        {"measurement": {"codes": ["BMI", "weight"], "value": {"min": 30}}},
        {"observation": {"codes": ["smoker"], "value": {"min": 10}}},
    ]
    for rule in unknowable:
        assert v.answers(include(rule)) == ([], [1, 2]), rule
        assert v.answers(exclude(rule)) == ([1, 2], [1, 2]), rule


def test_without_dates_a_reported_fact_cannot_be_placed_in_a_window(tmp_path):
    """A self-report has no dates or counts: a reported condition or medicine may be in a
    rule's window and on enough dates, or not. So it keeps the person for an include (it may
    hold) and does not exclude them (it may not): here the records (MI and metformin in 2015)
    say "not in the last year", and a self-report must not exclude anyone whose records could
    keep them. What was not reported holds in no window."""
    mi, metformin = CONDITIONS["mi"].code, MEDICINES["metformin"].code
    v = Volunteers(
        tmp_path,
        {1: report(conditions={mi}, medicines={metformin}), 2: report(height_cm=170, weight_kg=95)},
    )
    recent_mi = {"condition": {"codes": ["I21"], "within": {"days_before": 365}}}
    assert v.answers(include(recent_mi)) == ([], [1])
    assert v.answers(exclude(recent_mi)) == ([1, 2], [1, 2])
    future = {"condition": {"codes": ["I21"], "within": {"days_after": 30}}}
    assert v.answers(exclude(future)) == ([1, 2], [1, 2])
    twice = {"drug": {"codes": ["A10"], "min_count": 2}}
    assert v.answers(include(twice)) == ([], [1])
    assert v.answers(exclude(twice)) == ([1, 2], [1, 2])
    recent_metformin = {"drug": {"codes": ["A10BA"], "within": {"days_before": 90}}}
    assert v.answers(exclude({"any_of": [recent_mi, recent_metformin]})) == ([1, 2], [1, 2])
    # One reported BMI is one value, not two measurements on two dates.
    bmi_twice = {"measurement": {"codes": ["BMI"], "value": {"min": 30}, "min_count": 2}}
    assert v.answers(exclude(bmi_twice)) == ([1, 2], [1, 2])
    # Without a window or count, a reported condition is in "all history": it excludes.
    assert v.answers(exclude({"condition": {"codes": ["I21"]}})) == ([2], [2])

"""Criteria answered from a resident's self-reported profile (no health records consulted).

Used for volunteers who consented to be contacted but not to have their records matched. A
profile can answer only some rules, so evaluation is three-valued (Kleene logic): ``True``,
``False`` or ``None`` (cannot tell).

* demographics: age and sex from the personnummer, municipality from the identity;
* ``condition`` (ICD10) and ``drug`` (ATC) rules: against the reported conditions and medicines,
  with the language's prefix matching; a self-report has no dates, so with a window or a
  ``min_count`` above 1 a reported code makes the rule unknown, not true (the study team
  screens anyway), and an unreported one still makes it false;
* ``measurement`` rules on BMI, weight or height with a value range: from reported height/weight
  (the current values: in any window; with a ``min_count`` above 1, unknown);
* ``observation`` rules on the smoking-status codes: from the reported smoking status;
* everything else (labs, procedures, visits, death, OMOP concept ids): unknown.

A person is a candidate when no include rule is ``False`` and no exclude rule is ``True``:
unknowns never exclude, because the screening visit settles them. The rules read only the
``Health`` part of a report, so matching evaluates them once per distinct health profile and
applies the demographics to all volunteers at once (``demographics_mask``).
"""

from __future__ import annotations

__all__ = [
    "SMOKING_CODES",
    "Health",
    "SelfReport",
    "Truth",
    "demographics_hold",
    "demographics_mask",
    "health_holds",
    "may_be_eligible",
    "rule_truth",
]

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from brygga.cohort.criteria import (
    Criteria,
    EventSpec,
    MeasurementSpec,
    ObservationSpec,
    rule_body,
    rule_kind,
)
from brygga.cohort.population import completed_years, ymd
from brygga.records import codes

Truth = bool | None

SMOKING_CODES = {
    "never": codes.OBSERVATIONS["never_smoker"].code,
    "former": codes.OBSERVATIONS["ex_smoker"].code,
    "current": codes.OBSERVATIONS["smoker"].code,
}
_BODY = {codes.LABS[k].code: k for k in ("BMI", "weight", "height")}


@dataclass(frozen=True)
class Health:
    """What a profile says about health: all that the rules read (demographics aside).

    Volunteers share few distinct health profiles, so matching evaluates the rules once per
    distinct ``Health`` and criteria rather than once per person."""

    conditions: frozenset[str] = field(default_factory=frozenset)  # ICD10 codes, no dot
    medicines: frozenset[str] = field(default_factory=frozenset)  # ATC codes
    height_cm: float | None = None
    weight_kg: float | None = None
    smoking: str | None = None  # never | former | current

    def body(self, key: str) -> float | None:
        if key == "height":
            return self.height_cm
        if key == "weight":
            return self.weight_kg
        if self.height_cm and self.weight_kg:
            return self.weight_kg / (self.height_cm / 100) ** 2
        return None


@dataclass(frozen=True, kw_only=True)
class SelfReport(Health):
    birth_date: date
    sex: str  # female | male
    municipality: str | None

    def age_at(self, day: date) -> int:
        before_birthday = (day.month, day.day) < (self.birth_date.month, self.birth_date.day)
        return day.year - self.birth_date.year - before_birthday


def _kleene_any(values: Iterable[Truth]) -> Truth:
    values = list(values)
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


def _kleene_all(values: Iterable[Truth]) -> Truth:
    values = list(values)
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def _codes_hold(spec: EventSpec, vocabulary: str, reported: frozenset[str]) -> Truth:
    if any(vocab != vocabulary for vocab, _ in spec.codeset):
        return None
    return any(spec.code_matches(vocabulary, r) for r in reported)


def _measurement(spec: MeasurementSpec, person: Health) -> Truth:
    keys = {_BODY.get(code) for _, code in spec.codeset}
    if None in keys or len(keys) != 1 or spec.among is not None:
        return None
    value = person.body(keys.pop())  # type: ignore[arg-type]
    if value is None:
        return None
    if spec.value is None:
        return True
    if spec.value.normal:  # a self-report has no normal range
        return None
    return spec.value.plain_holds(value)


def _observation(spec: ObservationSpec, person: Health) -> Truth:
    wanted = {code for _, code in spec.codeset}
    if spec.value is not None or not wanted <= set(SMOKING_CODES.values()):
        return None
    if person.smoking is None:
        return None
    return SMOKING_CODES[person.smoking] in wanted


def _undated(truth: Truth, spec: EventSpec, current: bool) -> Truth:
    """A report says that, not when or how often: a reported condition or medicine may or may
    not fall in a rule's window, and one report is not ``min_count`` dates, so such a "yes" is
    only "cannot tell" (an exclude rule must not drop someone the records could keep).
    Measurements and smoking are reported as they are now, inside any window."""
    if truth and (spec.min_count > 1 or (spec.within is not None and not current)):
        return None
    return truth


def rule_truth(rule: object, person: Health) -> Truth:
    kind, body = rule_kind(rule), rule_body(rule)  # type: ignore[arg-type]
    if kind == "condition":
        return _undated(_codes_hold(body, "ICD10", person.conditions), body, current=False)
    if kind == "drug":
        return _undated(_codes_hold(body, "ATC", person.medicines), body, current=False)
    if kind == "measurement":
        return _undated(_measurement(body, person), body, current=True)
    if kind == "observation":
        return _undated(_observation(body, person), body, current=True)
    if kind == "any_of":
        return _kleene_any(rule_truth(r, person) for r in body)
    if kind == "all_of":
        return _kleene_all(rule_truth(r, person) for r in body)
    if kind == "none_of":
        held = _kleene_any(rule_truth(r, person) for r in body)
        return None if held is None else not held
    if kind == "demographics":
        # Rules are answered per health profile, without the person's demographics (those
        # are matched apart, vectorized): inside a group they cannot tell.
        return None
    if kind == "at_least":
        truths = [rule_truth(r, person) for r in body.of]
        yes, unknown = truths.count(True), truths.count(None)
        if yes >= body.n:
            return True
        return None if yes + unknown >= body.n else False
    return None  # procedures, visits, death: not in a self-report


def demographics_hold(criteria: Criteria, person: SelfReport, index_date: date) -> bool:
    d = criteria.demographics
    if d.age is not None:
        age = person.age_at(index_date)
        if (d.age.min is not None and age < d.age.min) or (
            d.age.max is not None and age > d.age.max
        ):
            return False
    if d.sex is not None and person.sex not in d.sex:
        return False
    return d.municipalities is None or person.municipality in d.municipalities


def health_holds(criteria: Criteria, person: Health) -> bool:
    """The rules part: no include rule is ``False`` and no exclude rule is ``True``."""
    if any(rule_truth(r, person) is False for r in criteria.include):
        return False
    return not any(rule_truth(r, person) is True for r in criteria.exclude)


def may_be_eligible(criteria: Criteria, person: SelfReport, index_date: date) -> bool:
    """True unless the profile shows the person does not meet the criteria."""
    return demographics_hold(criteria, person, index_date) and health_holds(criteria, person)


def demographics_mask(
    criteria: Criteria,
    index_date: date,
    birth: np.ndarray,
    male: np.ndarray,
    municipality: np.ndarray,
    municipalities: list[str | None],
) -> np.ndarray:
    """``demographics_hold`` for many people at once.

    ``birth``: birth dates as YYYYMMDD integers (the age in whole years is then the integer
    part of (index - birth) / 10000); ``male``: booleans; ``municipality``: indices into
    ``municipalities``."""
    d = criteria.demographics
    keep = np.ones(len(birth), dtype=bool)
    if d.age is not None:
        age = completed_years(ymd(index_date), birth)
        if d.age.min is not None:
            keep &= age >= d.age.min
        if d.age.max is not None:
            keep &= age <= d.age.max
    if d.sex is not None:
        keep &= np.isin(male, [s == "male" for s in d.sex])
    if d.municipalities is not None:
        wanted = [i for i, code in enumerate(municipalities) if code in d.municipalities]
        keep &= np.isin(municipality, wanted)
    return keep

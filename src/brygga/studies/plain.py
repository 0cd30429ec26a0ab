"""Who can take part, in plain words: a study's criteria as sentences a resident understands.

The public study page (``/studier/{id}``) says who may take part. The criteria are written for
engines (codes, windows, value ranges); this renders them as short Swedish or English phrases:
age range, sex, diagnoses and medicines by name (``registry.catalogue`` and the names below),
laboratory values with their units, exclusions. Whatever it cannot phrase well (an unnamed code,
a visit or death rule) is said generically - "further medical conditions, which the study team
goes through with you" - and never shown as YAML or codes: the study team screens anyway.

Every phrase is a message key of the ``public`` domain, so both languages stay complete.
"""

from __future__ import annotations

__all__ = ["Item", "Plain", "describe"]

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from brygga.cohort.criteria import (
    AllOf,
    AnyOf,
    AtLeast,
    ConditionRule,
    Criteria,
    DrugRule,
    MeasurementRule,
    Model,
    ObservationRule,
    ProcedureRule,
    ValueRange,
    Window,
)
from brygga.messages import translate
from brygga.records import codes as codebook
from brygga.registry import catalogue

# Medicine groups by ATC prefix (the first three to five characters), for criteria that name a
# group rather than one substance.
ATC_GROUPS: dict[str, tuple[str, str]] = {
    "A10": ("läkemedel mot diabetes", "diabetes medicines"),
    "A10A": ("insulin", "insulin"),
    "A10B": ("blodsockersänkande tabletter eller sprutor", "blood-sugar-lowering medicines"),
    "B01": ("blodförtunnande läkemedel", "blood thinners"),
    "C03": ("vätskedrivande läkemedel", "diuretics"),
    "C07": ("betablockerare", "beta blockers"),
    "C08": ("kalciumantagonister (blodtrycksmedicin)", "calcium channel blockers"),
    "C09": ("blodtrycksmedicin (ACE-hämmare eller ARB)", "blood pressure medicines (ACE/ARB)"),
    "C10": ("blodfettssänkande läkemedel", "cholesterol-lowering medicines"),
    "H03": ("sköldkörtelhormon", "thyroid hormone"),
    "N06A": ("läkemedel mot depression", "antidepressants"),
    "N06D": ("läkemedel mot demens", "dementia medicines"),
    "R03": ("läkemedel mot astma eller KOL", "asthma or COPD medicines"),
}
# ICD-10 blocks beyond the self-report catalogue (criteria often name a three-character block).
ICD_BLOCKS: dict[str, tuple[str, str]] = {
    "E10": ("typ 1-diabetes", "type 1 diabetes"),
    "E11": ("typ 2-diabetes", "type 2 diabetes"),
    "E66": ("fetma", "obesity"),
    "E78": ("höga blodfetter", "high cholesterol"),
    "F32": ("depression", "depression"),
    "F03": ("demens", "dementia"),
    "G30": ("Alzheimers sjukdom", "Alzheimer's disease"),
    "I10": ("högt blodtryck", "high blood pressure"),
    "I20": ("kärlkramp", "angina"),
    "I21": ("hjärtinfarkt", "a heart attack"),
    "I22": ("hjärtinfarkt", "a heart attack"),
    "I48": ("förmaksflimmer", "atrial fibrillation"),
    "I50": ("hjärtsvikt", "heart failure"),
    "I63": ("stroke", "a stroke"),
    "I64": ("stroke", "a stroke"),
    "J44": ("KOL", "COPD"),
    "J45": ("astma", "asthma"),
    "N18": ("kronisk njursjukdom", "chronic kidney disease"),
    "C50": ("bröstcancer", "breast cancer"),
    "C61": ("prostatacancer", "prostate cancer"),
    "C18": ("tjocktarmscancer", "colon cancer"),
    "C34": ("lungcancer", "lung cancer"),
    "C43": ("malignt melanom", "melanoma"),
}
LABS: dict[str, tuple[str, str]] = {
    "HbA1c": ("långtidssocker (HbA1c)", "long-term blood sugar (HbA1c)"),
    "TC": ("totalkolesterol", "total cholesterol"),
    "HDL": ("HDL-kolesterol (det goda)", "HDL cholesterol (the good kind)"),
    "LDL": ("LDL-kolesterol", "LDL cholesterol"),
    "creatinine": ("kreatinin (njurvärde)", "creatinine (a kidney test)"),
    "SBP": ("övre blodtryck", "upper (systolic) blood pressure"),
    "DBP": ("nedre blodtryck", "lower (diastolic) blood pressure"),
    "BMI": ("BMI (vikt i förhållande till längd)", "BMI (weight for height)"),
    "weight": ("vikt", "weight"),
    "height": ("längd", "height"),
}
PROCEDURES: dict[str, tuple[str, str]] = {
    "pci": ("ballongvidgning av kranskärlen", "a coronary angioplasty (stent)"),
    "cabg": ("en kranskärlsoperation (bypass)", "coronary bypass surgery"),
    "colonoscopy": ("en koloskopi", "a colonoscopy"),
}
SMOKING = {"smoker": "public_wp_smoker", "ex_smoker": "public_wp_ex_smoker",
           "never_smoker": "public_wp_never_smoker"}  # fmt: skip


@dataclass
class Item:
    """One phrase; ``children`` when it is a group (any of, at least n of)."""

    text: str
    children: list[Item] = field(default_factory=list)


@dataclass
class Plain:
    """Who can take part: phrases that must hold, phrases that exclude."""

    include: list[Item]
    exclude: list[Item]


def describe(criteria: Criteria, lang: str, place: Callable[[str], str] = str) -> Plain:
    """``criteria`` as phrases in ``lang``; ``place`` names a municipality from its code."""
    include: list[Item] = []
    demo = criteria.demographics
    if demo.age is not None:
        lo, hi = demo.age.min, demo.age.max
        if lo is not None and hi is not None:
            include.append(Item(_t("public_wp_age_between", lang, lo=lo, hi=hi)))
        elif lo is not None:
            include.append(Item(_t("public_wp_age_min", lang, lo=lo)))
        elif hi is not None:
            include.append(Item(_t("public_wp_age_max", lang, hi=hi)))
    if demo.sex is not None and len(set(demo.sex)) == 1:
        include.append(Item(_t(f"public_wp_sex_{demo.sex[0]}", lang)))
    if demo.municipalities:
        names = _join([place(m) for m in demo.municipalities], lang, "public_wp_or")
        include.append(Item(_t("public_wp_lives_in", lang, places=names)))
    include += [_rule(r, lang) for r in criteria.include]
    return Plain(_merge_generic(include, lang), _merge_generic(
        [_rule(r, lang) for r in criteria.exclude], lang))  # fmt: skip


GENERIC = "\0generic"  # marks a rule said generically (merged into one phrase per list)


def _merge_generic(items: list[Item], lang: str) -> list[Item]:
    """Every rule said generically becomes one phrase at the end, said once."""
    named = [i for i in items if i.text != GENERIC]
    if len(named) < len(items):
        named.append(Item(_t("public_wp_generic", lang)))
    return named


def _rule(rule: Model, lang: str) -> Item:
    if isinstance(rule, ConditionRule):
        names = _names(rule.condition.codeset, lang, _condition_name)
        if names is None:
            return Item(GENERIC)
        text = _t("public_wp_condition", lang, names=_join(names, lang, "public_wp_or"))
        return Item(text + _window(rule.condition.within, lang))
    if isinstance(rule, DrugRule):
        names = _names(rule.drug.codeset, lang, _medicine_name)
        if names is None:
            return Item(GENERIC)
        text = _t("public_wp_drug", lang, names=_join(names, lang, "public_wp_or"))
        return Item(text + _window(rule.drug.within, lang))
    if isinstance(rule, ProcedureRule):
        names = _names(rule.procedure.codeset, lang, _procedure_name)
        if names is None:
            return Item(GENERIC)
        text = _t("public_wp_procedure", lang, names=_join(names, lang, "public_wp_or"))
        return Item(text + _window(rule.procedure.within, lang))
    if isinstance(rule, MeasurementRule):
        return _measurement(rule, lang)
    if isinstance(rule, ObservationRule):
        keys = [_smoking_key(c) for c in rule.observation.codeset]
        if rule.observation.value is not None or None in keys:
            return Item(GENERIC)
        return Item(_join([_t(k, lang) for k in keys if k], lang, "public_wp_or"))
    if isinstance(rule, AnyOf | AllOf | AtLeast):
        return _group(rule, lang)
    return Item(GENERIC)  # visits, death: nothing a resident needs in these words


def _group(rule: AnyOf | AllOf | AtLeast, lang: str) -> Item:
    if isinstance(rule, AnyOf):
        rules, key, n = rule.any_of, "public_wp_any_of", 1
    elif isinstance(rule, AllOf):
        rules, key, n = rule.all_of, "public_wp_all_of", len(rule.all_of)
    else:
        rules, key, n = rule.at_least.of, "public_wp_at_least", rule.at_least.n
    children = [_rule(r, lang) for r in rules]
    if any(c.text == GENERIC for c in children):
        return Item(GENERIC)  # half a group said would mislead; the team explains it
    return Item(_t(key, lang, n=n), children)


def _measurement(rule: MeasurementRule, lang: str) -> Item:
    spec = rule.measurement
    labs = [_lab(c) for c in spec.codeset]
    if None in labs or len(labs) != 1:
        return Item(GENERIC)
    lab = labs[0]
    assert lab is not None
    name = LABS[lab.key][0 if lang == "sv" else 1]
    if spec.value is None:
        text = _t("public_wp_measured", lang, name=name)
    else:
        text = _t("public_wp_value", lang, name=name, range=_range(spec.value, lab.unit, lang))
        if spec.latest:
            text = _t("public_wp_latest", lang, name=name, range=_range(spec.value, lab.unit, lang))
    return Item(text + _window(spec.within, lang))


def _range(value: ValueRange, unit: str, lang: str) -> str:
    unit = f" {unit}" if unit else ""
    if value.min is not None and value.max is not None:
        return (
            _t("public_wp_between", lang, lo=_num(value.min, lang), hi=_num(value.max, lang)) + unit
        )
    if value.min is not None:
        return _t("public_wp_at_least_value", lang, lo=_num(value.min, lang)) + unit
    return _t("public_wp_at_most_value", lang, hi=_num(value.max or 0, lang)) + unit


def _num(x: float, lang: str) -> str:
    text = f"{x:g}"
    return text.replace(".", ",") if lang == "sv" else text


def _window(within: Window | None, lang: str) -> str:
    """ ", in the last 2 years" for a window ending at the index date; else nothing more."""
    if within is None or within.days_after or not within.days_before:
        return ""
    days = within.days_before
    if days >= 365 and days % 365 in (0, 1, 364):
        period = _t("public_wp_years", lang, n=round(days / 365))
    elif days >= 28 and days % 30 in (0, 1, 29):
        period = _t("public_wp_months", lang, n=round(days / 30))
    else:
        period = _t("public_wp_days", lang, n=days)
    return _t("public_wp_within", lang, period=period)


def _names(
    codeset: Sequence[tuple[str, str]], lang: str, name: Callable[[str, str, str], str | None]
) -> list[str] | None:
    """Names of every code, or None if one cannot be named (the rule is then said generically)."""
    out: list[str] = []
    for vocabulary, code in codeset:
        text = name(vocabulary, code, lang)
        if text is None:
            return None
        if text not in out:
            out.append(text)
    return out


def _condition_name(vocabulary: str, code: str, lang: str) -> str | None:
    if vocabulary != "ICD10":
        return None
    if code[:3] in ICD_BLOCKS and len(code) <= 4:
        return ICD_BLOCKS[code[:3]][0 if lang == "sv" else 1]
    for entry in catalogue.CONDITIONS.values():
        if entry.code.startswith(code):
            return entry.label(lang).lower() if lang == "sv" else entry.label(lang)
    return None


def _medicine_name(vocabulary: str, code: str, lang: str) -> str | None:
    if vocabulary != "ATC":
        return None
    if code in ATC_GROUPS:
        return ATC_GROUPS[code][0 if lang == "sv" else 1]
    for entry in catalogue.MEDICINES.values():
        if entry.code == code or (len(code) >= 7 and entry.code.startswith(code)):
            return entry.label(lang)
    for prefix in sorted(ATC_GROUPS, key=len, reverse=True):
        if code.startswith(prefix):
            return ATC_GROUPS[prefix][0 if lang == "sv" else 1]
    return None


def _procedure_name(vocabulary: str, code: str, lang: str) -> str | None:
    for key, entry in codebook.PROCEDURES.items():
        if entry.vocabulary == vocabulary and entry.code.startswith(code) and key in PROCEDURES:
            return PROCEDURES[key][0 if lang == "sv" else 1]
    return None


def _lab(pair: tuple[str, str]) -> Any:
    vocabulary, code = pair
    for lab in codebook.LABS.values():
        if lab.vocabulary == vocabulary and lab.code == code and lab.key in LABS:
            return lab
    return None


def _smoking_key(pair: tuple[str, str]) -> str | None:
    vocabulary, code = pair
    for key, entry in codebook.OBSERVATIONS.items():
        if entry.vocabulary == vocabulary and entry.code == code:
            return SMOKING.get(key)
    return None


def _join(names: list[str], lang: str, word: str) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + f" {_t(word, lang)} " + names[-1]


def _t(key: str, lang: str, **params: Any) -> str:
    return translate(key, lang).format(**params)

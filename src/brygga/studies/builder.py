"""The criteria builder: eligibility criteria as form rows (demographics, include and exclude
rules) and back, code search for the rows, and attrition steps described in the reader's words.

The builder covers what most studies ask: age, sex and rules on diagnoses, drugs, measurements
and procedures (codes, a window of days before the index date, a least number of dates, a value
range and "latest" for measurements). Anything else (groups such as ``any_of``, municipalities,
visits, observations, windows after the index date) stays in YAML: ``representable`` says
whether the builder can show given criteria without losing any of it. Criteria built here and
written as YAML read back into the same rows (``form_from_criteria(criteria_from_form(f))``):
``tests/unit/test_builder.py``.
"""

from __future__ import annotations

__all__ = [
    "BUILDER_KINDS",
    "MAX_HITS",
    "CodeHit",
    "blank_rule",
    "concept_names",
    "criteria_from_form",
    "criteria_yaml",
    "form_from_criteria",
    "form_from_request",
    "population_label",
    "representable",
    "search_codes",
    "step_labels",
]

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import yaml
from pydantic import ValidationError

from brygga.cohort.criteria import (
    RULE_KINDS,
    AgeRange,
    Criteria,
    Demographics,
    EventSpec,
    Model,
    ValuedSpec,
    rule_body,
    rule_kind,
)
from brygga.cohort.explain import entry_step, rule_text
from brygga.errors import InputError
from brygga.forms import FieldMessage, FormError
from brygga.records import codes as codebook
from brygga.records.store import Region

# Rule kinds the builder's rows offer, with the vocabularies each may name (the first is the
# kind's default; "" means the criteria language's default: aliases for measurements).
BUILDER_KINDS: dict[str, tuple[str, ...]] = {
    "condition": ("ICD10", "OMOP"),
    "drug": ("ATC", "OMOP"),
    "measurement": ("", "NPU", "LOINC", "OMOP"),
    "procedure": ("KVA", "OMOP"),
}
SIDES = ("include", "exclude")
MAX_HITS = 20
_ROW = re.compile(r"rules-([0-9]{1,3})-([a-z_]+)")
_SPLIT = re.compile(r"[\s,;]+")
# The OMOP domain of each kind's concepts (for the concept table of an imported region).
_DOMAINS = {
    "condition": "Condition",
    "drug": "Drug",
    "measurement": "Measurement",
    "procedure": "Procedure",
}


def blank_rule(side: str = "include", kind: str = "condition") -> dict[str, str]:
    """An empty row of the form."""
    return {"side": side, "kind": kind, "vocabulary": BUILDER_KINDS.get(kind, ("",))[0],
            "codes": "", "days": "", "min_count": "", "value_min": "", "value_max": "",
            "latest": ""}  # fmt: skip


# --- Criteria -> form -------------------------------------------------------------------------


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _rule_row(side: str, rule: Model) -> dict[str, str] | None:
    kind = rule_kind(rule)
    if kind not in BUILDER_KINDS:
        return None
    spec: EventSpec = rule_body(rule)
    if spec.within is not None and spec.within.days_after != 0:
        return None
    if (spec.vocabulary or "") not in BUILDER_KINDS[kind] and spec.vocabulary is not None:
        return None
    row = blank_rule(side, kind)
    row["vocabulary"] = spec.vocabulary or ("" if kind == "measurement" else row["vocabulary"])
    row["codes"] = ", ".join(spec.codes)
    row["days"] = "" if spec.within is None else str(spec.within.days_before)
    row["min_count"] = "" if spec.min_count == 1 else str(spec.min_count)
    if isinstance(spec, ValuedSpec):
        if spec.among is not None:
            return None
        if spec.value is not None:
            row["value_min"], row["value_max"] = _number(spec.value.min), _number(spec.value.max)
        row["latest"] = "yes" if spec.latest else ""
    return row


def form_from_criteria(criteria: Criteria) -> dict[str, Any] | None:
    """The builder's form for ``criteria``, or None when the builder cannot show all of it."""
    demo = criteria.demographics
    if demo.municipalities is not None:
        return None
    rows = []
    for side in SIDES:
        for rule in getattr(criteria, side):
            row = _rule_row(side, rule)
            if row is None:
                return None
            rows.append(row)
    age = demo.age or AgeRange()
    return {
        "name": criteria.name,
        "description": criteria.description or "",
        "index_date": criteria.index_date.isoformat() if criteria.index_date else "",
        "age_min": "" if age.min is None else str(age.min),
        "age_max": "" if age.max is None else str(age.max),
        "sex": list(demo.sex or []),
        "rules": rows,
    }


def representable(criteria: Criteria) -> bool:
    return form_from_criteria(criteria) is not None


# --- Form -> criteria -------------------------------------------------------------------------


def form_from_request(
    form: Mapping[str, Any], getlist: Callable[[str], list[Any]]
) -> dict[str, Any]:
    """The builder's fields from a posted form (rows are ``rules-<n>-<field>``, in order of n;
    a row whose codes are empty is dropped, so an added row left blank does no harm)."""
    rows: dict[int, dict[str, str]] = {}
    for key in form:
        match = _ROW.fullmatch(str(key))
        if match:
            n, name = int(match[1]), match[2]
            rows.setdefault(n, blank_rule())[name] = str(form.get(key) or "").strip()
    kept = [rows[n] for n in sorted(rows) if rows[n].get("codes")]
    return {
        "name": str(form.get("name") or "").strip(),
        "description": str(form.get("description") or "").strip(),
        "index_date": str(form.get("index_date") or "").strip(),
        "age_min": str(form.get("age_min") or "").strip(),
        "age_max": str(form.get("age_max") or "").strip(),
        "sex": [str(s) for s in getlist("sex") if str(s) in ("female", "male")],
        "rules": kept,
    }


def _whole(value: str, field: str, errors: dict[str, str], low: int = 0) -> int | None:
    if not value:
        return None
    if not value.isdigit() or int(value) < low:
        errors[field] = (
            "must be a whole number" if low == 0 else f"must be a whole number of at least {low}"
        )
        return None
    return int(value)


def _decimal(value: str, field: str, errors: dict[str, str]) -> float | None:
    if not value:
        return None
    try:
        return float(value.replace(",", ".").replace("\u2212", "-"))
    except ValueError:
        errors[field] = "must be a number"
        return None


def _message(error: Any) -> str:
    text = str(error.get("msg", "is not valid"))
    return text.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _bad_codes(codes: list[str], vocabulary: str) -> FieldMessage | None:
    """A message (in the catalogues) for codes that are not codes of ``vocabulary`` (lab
    aliases when it is empty); it names the code system, never the typed text."""
    for code in codes:
        if not vocabulary:
            if codebook.resolve_alias(code) is None:
                known = ", ".join(c.key for c in codebook.LABS.values())
                return FieldMessage(
                    "contains a name that is not one of Brygga's lab names ({known}); choose "
                    "NPU or LOINC for other codes",
                    {"known": known},
                )
            continue
        try:
            codebook.vocabulary(vocabulary).validate(code)
        except InputError:
            book = codebook.vocabulary(vocabulary)
            return FieldMessage(
                "contains a code that is not a {name} code (e.g. {example})",
                {"name": book.id, "example": book.example},
            )
    return None


def _rule(i: int, row: Mapping[str, str], errors: dict[str, str]) -> tuple[str, Model] | None:
    prefix = f"rules-{i}-"
    side, kind = row.get("side", "include"), row.get("kind", "condition")
    if side not in SIDES:
        errors[prefix + "side"] = "choose include or exclude"
        return None
    if kind not in BUILDER_KINDS:
        errors[prefix + "kind"] = "choose the kind of rule"
        return None
    spec: dict[str, Any] = {}
    vocabulary = row.get("vocabulary", "")
    if vocabulary not in BUILDER_KINDS[kind]:
        errors[prefix + "vocabulary"] = "choose a code system from the list"
        return None
    if vocabulary:  # written out, as in the documentation's examples ("" : lab aliases)
        spec["vocabulary"] = vocabulary
    spec["codes"] = [c for c in _SPLIT.split(row.get("codes", "")) if c]
    bad = _bad_codes(spec["codes"], vocabulary)
    if bad is not None:
        errors[prefix + "codes"] = bad
    days = _whole(row.get("days", ""), prefix + "days", errors)
    if days is not None:
        spec["within"] = {"days_before": days}
    count = _whole(row.get("min_count", ""), prefix + "min_count", errors, low=1)
    if count is not None and count > 1:
        spec["min_count"] = count
    if kind == "measurement":
        low = _decimal(row.get("value_min", ""), prefix + "value_min", errors)
        high = _decimal(row.get("value_max", ""), prefix + "value_max", errors)
        if low is not None or high is not None:
            spec["value"] = {k: v for k, v in (("min", low), ("max", high)) if v is not None}
        if row.get("latest") == "yes":
            spec["latest"] = True
    if any(k.startswith(prefix) for k in errors):
        return None
    try:
        return side, RULE_KINDS[kind].model_validate({kind: spec})
    except ValidationError as exc:
        for error in exc.errors():
            loc = [str(p) for p in error["loc"]]
            if "value" in loc:
                field = "value_max" if "max" in loc else "value_min"
            elif "within" in loc:
                field = "days"
            elif "min_count" in loc or ("latest" in loc):
                field = "min_count"
            elif "vocabulary" in loc:
                field = "vocabulary"
            else:
                field = "codes"
            errors.setdefault(prefix + field, _message(error))
        return None


def criteria_from_form(data: Mapping[str, Any]) -> Criteria:
    """Criteria from the builder's fields; a ``FormError`` names each field that is wrong
    (``age_min``, ``rules-2-codes`` ...)."""
    errors: dict[str, str] = {}
    name = str(data.get("name") or "").strip()
    if not name:
        errors["name"] = "is required"
    elif len(name) > 200:
        errors["name"] = FieldMessage(
            "is too long (at most {max_length} characters)", {"max_length": 200}
        )
    index_date = None
    if data.get("index_date"):
        try:
            index_date = date.fromisoformat(str(data["index_date"]))
        except ValueError:
            errors["index_date"] = "must be a date written YYYY-MM-DD"
    age_min = _whole(str(data.get("age_min") or ""), "age_min", errors)
    age_max = _whole(str(data.get("age_max") or ""), "age_max", errors)
    for field, value in (("age_min", age_min), ("age_max", age_max)):
        if value is not None and value > 150:
            errors[field] = "must be at most 150"
    if age_min is not None and age_max is not None and age_min > age_max:
        errors["age_max"] = "must be at least the lowest age"
    sex = [s for s in data.get("sex") or [] if s in ("female", "male")]
    rules: dict[str, list[Model]] = {"include": [], "exclude": []}
    rows = list(data.get("rules") or [])
    if len(rows) > 50:
        errors["rules"] = "at most 50 rules in the builder (use YAML for more)"
        rows = []
    for i, row in enumerate(rows):
        built = _rule(i, row, errors)
        if built is not None:
            rules[built[0]].append(built[1])
    if errors:
        raise FormError(errors)
    age = None
    if age_min is not None or age_max is not None:
        age = AgeRange(min=age_min, max=age_max)
    return Criteria(
        name=name,
        description=str(data.get("description") or "").strip() or None,
        index_date=index_date,
        demographics=Demographics(age=age, sex=sex or None),
        include=rules["include"],
        exclude=rules["exclude"],
    )


def criteria_yaml(criteria: Criteria) -> str:
    """The criteria as the YAML a researcher would write (defaults left out)."""
    document = _whole_numbers(criteria.model_dump(mode="json", exclude_defaults=True))
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def _whole_numbers(node: Any) -> Any:
    """53.0 written as 53, as a person writes it (it reads back as the same number)."""
    if isinstance(node, dict):
        return {k: _whole_numbers(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_whole_numbers(v) for v in node]
    if isinstance(node, float) and node.is_integer():
        return int(node)
    return node


# --- Code search ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeHit:
    code: str  # what goes into the rule's codes
    vocabulary: str  # the vocabulary to choose for it ("" for an alias)
    label: str  # English: the code system's title, an OMOP concept's name
    sv: str = ""  # Swedish, where the catalogue has a Swedish name

    def name(self, lang: str) -> str:
        return self.sv if lang == "sv" and self.sv else self.label

    def english(self, lang: str) -> bool:
        """Whether ``name(lang)`` is English on a page in ``lang`` (marked ``lang="en"``)."""
        return lang == "sv" and not self.sv


def _catalogue(kind: str) -> list[CodeHit]:
    def hit(c: codebook.Code, code: str, vocabulary: str, suffix: str = "") -> CodeHit:
        sv = codebook.SWEDISH.get(c.key)
        return CodeHit(code, vocabulary, c.label + suffix, sv + suffix if sv else "")

    if kind == "condition":
        return [hit(c, c.code, "ICD10") for c in codebook.CONDITIONS.values()]
    if kind == "drug":
        return [hit(c, c.code, "ATC") for c in codebook.DRUGS.values()]
    if kind == "procedure":
        return [hit(c, c.code, "KVA") for c in codebook.PROCEDURES.values()]
    if kind == "measurement":
        return [hit(c, c.key, "", f" ({c.vocabulary} {c.code})") for c in codebook.LABS.values()]
    return []


def search_codes(kind: str, query: str, region: Region | None = None) -> list[CodeHit]:
    """Codes for a rule of ``kind`` whose code, name (Swedish or English) or alias contains
    ``query``: Brygga's
    catalogue (ICD-10-SE, ATC, KVÅ, the lab aliases) and, on an imported OMOP region, its
    concept table (as OMOP concept ids). At most ``MAX_HITS``."""
    text = query.strip().lower()[:100]
    if kind not in BUILDER_KINDS or len(text) < 2:
        return []
    hits = [
        h
        for h in _catalogue(kind)
        if text in h.code.lower()
        or text in h.label.lower()
        or text in h.sv.lower()
        or text in h.code.lower().replace(".", "")
    ]
    if region is not None and "concept" in region.tables():
        hits += _concepts(region, _DOMAINS[kind], text, MAX_HITS - len(hits))
    return hits[:MAX_HITS]


def _concepts(region: Region, domain: str, text: str, limit: int) -> list[CodeHit]:
    if limit <= 0:
        return []
    like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    con = region.duckdb(threads=1)
    try:
        rows = con.execute(
            "SELECT concept_id, concept_name, vocabulary_id, concept_code FROM concept"
            " WHERE domain_id = ? AND (lower(concept_name) LIKE ? ESCAPE '\\'"
            " OR lower(concept_code) LIKE ? ESCAPE '\\') AND concept_id <> 0"
            " ORDER BY standard_concept = 'S' DESC, concept_name LIMIT ?",
            [domain, like, like, limit],
        ).fetchall()
    finally:
        con.close()
    return [
        CodeHit(str(cid), "OMOP", f"{name} ({vocab} {code})") for cid, name, vocab, code in rows
    ]


def concept_names(region: Region | None, criteria: Criteria) -> dict[str, str]:
    """The names of the OMOP concepts the criteria's rules name, from an imported region's
    concept table (empty without one)."""
    ids = sorted(
        {
            int(code)
            for side in SIDES
            for rule in getattr(criteria, side)
            if rule_kind(rule) in BUILDER_KINDS
            for vocab, code in rule_body(rule).codeset
            if vocab == "OMOP"
        }
    )
    if region is None or not ids or "concept" not in region.tables():
        return {}
    con = region.duckdb(threads=1)
    try:
        rows = con.execute(
            "SELECT concept_id, concept_name FROM concept WHERE concept_id IN (SELECT unnest(?))",
            [ids[:500]],
        ).fetchall()
    finally:
        con.close()
    return {str(cid): str(name) for cid, name in rows}


# --- Attrition steps in the reader's words ----------------------------------------------------


def _codes_text(spec: EventSpec, concept_names: Mapping[str, str], lang: str) -> str:
    names = []
    for vocab, code in spec.codeset:
        label = concept_names.get(code) if vocab == "OMOP" else _label(vocab, code, lang)
        names.append(f"{vocab} {code}" + (f" ({label})" if label else ""))
    return ", ".join(names)


def _label(vocab: str, code: str, lang: str) -> str | None:
    for group in (codebook.CONDITIONS, codebook.DRUGS, codebook.LABS, codebook.PROCEDURES):
        for c in group.values():
            if c.vocabulary == vocab and c.code == code:
                return codebook.code_name(c, lang)
    return None


def step_labels(
    criteria: Criteria,
    t: Callable[[str], str],
    lang: str,
    concept_names: Mapping[str, str] | None = None,
) -> list[str]:
    """One label per attrition step (``Criteria.steps``) in ``lang``, whose message catalogue's
    lookup is ``t`` (keys ``wb_step_*``). Rules the builder's form cannot hold (groups, visits,
    windows after the index date, ...) are said as ``brygga criteria check`` says them."""
    names = concept_names or {}
    labels = [_demographics(criteria.demographics, t)]
    for side in SIDES:
        lead = t(f"wb_step_{side}")
        for rule in getattr(criteria, side):
            labels.append(f"{lead}: {_rule_text(rule, t, lang, names)}")
    return labels


def population_label(criteria: Criteria, t: Callable[[str], str], lang: str, day: str) -> str:
    """The label of the first attrition step: who entered (with an ``entry``), or the people
    alive and under observation on the index date ``day``."""
    if criteria.entry is not None:
        return entry_step(criteria.entry, lang)
    return t("wb_step_population").format(date=day)


def _demographics(demo: Demographics, t: Callable[[str], str]) -> str:
    parts = []
    if demo.age is not None:
        lo = demo.age.min if demo.age.min is not None else 0
        if demo.age.max is None:
            parts.append(t("wb_step_age_from").format(min=lo))
        else:
            parts.append(t("wb_step_age").format(min=lo, max=demo.age.max))
    if demo.sex is not None:
        parts.append(", ".join(t(f"wb_sex_{s}") for s in demo.sex))
    if demo.municipalities is not None:
        parts.append(t("wb_step_municipalities").format(n=len(demo.municipalities)))
    body = "; ".join(parts) if parts else t("wb_step_anyone")
    return f"{t('wb_step_demographics')}: {body}"


def _rule_text(rule: Model, t: Callable[[str], str], lang: str, names: Mapping[str, str]) -> str:
    if _rule_row("include", rule) is None:  # not a rule of the form
        return rule_text(rule, lang)
    kind, spec = rule_kind(rule), rule_body(rule)
    text = f"{t('wb_kind_' + kind)} {_codes_text(spec, names, lang)}"
    mark = t("wb_decimal_mark")

    def _number(value: float | None) -> str:  # 120,5 in Swedish
        return f"{value:g}".replace(".", mark) if value is not None else ""

    if isinstance(spec, ValuedSpec):
        if spec.value is not None:
            v = spec.value
            if v.max is None:
                text += " " + t("wb_step_value_min").format(min=_number(v.min))
            elif v.min is None:
                text += " " + t("wb_step_value_max").format(max=_number(v.max))
            else:
                text += " " + t("wb_step_value_range").format(
                    min=_number(v.min), max=_number(v.max)
                )
        if spec.latest:
            text += " " + t("wb_step_latest")
    if spec.min_count > 1:
        text += " " + t("wb_step_min_count").format(n=spec.min_count)
    if spec.within is None:
        text += " " + t("wb_step_ever")
    elif spec.within.days_after == 0:
        text += " " + t("wb_step_within").format(days=spec.within.days_before)
    else:
        text += " " + t("wb_step_window").format(
            before=spec.within.days_before, after=spec.within.days_after
        )
    return text

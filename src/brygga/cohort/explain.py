"""Criteria in words, Swedish or English (``brygga criteria check``).

The texts come from the message catalogues (domain ``criteria``); codes and numbers are shown
as written after normalization. Needs no region: it reads only the validated criteria.
"""

from __future__ import annotations

__all__ = ["entry_step", "explain", "rule_text"]

from typing import Any

from brygga.cohort.criteria import (
    Criteria,
    DeathSpec,
    Demographics,
    DrugSpec,
    Entry,
    EventSpec,
    Model,
    ValuedSpec,
    VisitSpec,
    Window,
    rule_body,
    rule_kind,
)
from brygga.messages import format_number, translate


def _t(key: str, lang: str, **params: Any) -> str:
    return translate(f"criteria_{key}", lang).format(**params)


def _days(key: str, lang: str, n: int) -> str:
    """A message with a number of days: its ``_one`` form for one day ("1 dag före")."""
    return _t(key + ("_one" if n == 1 else ""), lang, n=format_number(n, lang))


def explain(criteria: Criteria, lang: str, source: str) -> list[str]:
    """Lines saying what the criteria ask, in ``lang`` (``sv`` or ``en``)."""
    lines = [_t("check_valid", lang, source=source), _t("name", lang, name=criteria.name)]
    if criteria.entry is not None:
        entry = criteria.entry
        key = "entry_first" if entry.occurrence == "first" else "entry_latest"
        event = _codes(entry.spec, lang)
        if getattr(entry.spec, "value", None) is not None:
            event += ", " + _t("value", lang, text=_value(entry.spec.value, lang))
        lines.append(_t(key, lang, event=event, start=entry.period.start, end=entry.period.end))
    else:
        if criteria.index_date is not None:
            lines.append(_t("index_date", lang, date=criteria.index_date.isoformat()))
        else:
            lines.append(_t("index_today", lang))
        lines.append(_t("population", lang))
    lines.append(_t("demographics", lang, text=_demographics(criteria.demographics, lang)))
    for side, rules in (("include", criteria.include), ("exclude", criteria.exclude)):
        lines.append(_t(side, lang))
        if not rules:
            lines.append("  - " + _t("none", lang))
        for rule in rules:
            lines += _rule(rule, lang, 1)
    return lines


def entry_step(entry: Entry, lang: str) -> str:
    """The first attrition step of criteria with an ``entry``, in a line: who entered."""
    key = "step_entry_first" if entry.occurrence == "first" else "step_entry_latest"
    return _t(key, lang, event=_codes(entry.spec, lang), start=entry.period.start,
              end=entry.period.end)  # fmt: skip


def rule_text(rule: Model, lang: str) -> str:
    """One rule in words, on one line (an attrition step's label): a group's head, then its
    rules in parentheses, separated by semicolons."""
    kind, body = rule_kind(rule), rule_body(rule)
    if kind in ("any_of", "all_of", "none_of", "at_least"):
        children = body.of if kind == "at_least" else body
        head = _t(kind, lang, n=body.n) if kind == "at_least" else _t(kind, lang)
        return f"{head.rstrip(':')} ({'; '.join(rule_text(c, lang) for c in children)})"
    if kind == "demographics":
        return _t("rule_demographics", lang, text=_demographics(body, lang))
    return _leaf(body, lang)


def _rule(rule: Model, lang: str, depth: int) -> list[str]:
    kind, body = rule_kind(rule), rule_body(rule)
    pad = "  " * depth + "- "
    if kind in ("any_of", "all_of", "none_of", "at_least"):
        children = body.of if kind == "at_least" else body
        head = _t(kind, lang, n=body.n) if kind == "at_least" else _t(kind, lang)
        out = [pad + head]
        for child in children:
            out += _rule(child, lang, depth + 1)
        return out
    if kind == "demographics":
        return [pad + _t("rule_demographics", lang, text=_demographics(body, lang))]
    return [pad + _leaf(body, lang)]


def _leaf(spec: Any, lang: str) -> str:
    if isinstance(spec, DeathSpec):
        return f"{_t('death', lang)} {_window(spec.within, lang)}"
    if isinstance(spec, VisitSpec):
        if spec.types:
            types = ", ".join(_t(f"visit_{v}", lang) for v in spec.types)
            text = _t("visit_types", lang, types=types)
        else:
            text = _t("visit", lang)
    else:
        text = _codes(spec, lang)
        if isinstance(spec, ValuedSpec):
            if spec.value is not None:
                text += ", " + _t("value", lang, text=_value(spec.value, lang))
            if spec.latest:
                among = spec.among_codeset
                text += ", " + (
                    _t("latest_among", lang, codes=_list(among))
                    if spec.among
                    else _t("latest", lang)
                )
        if isinstance(spec, DrugSpec) and spec.exposure is not None:
            if spec.exposure.current:
                text += ", " + _t("exposure_current", lang)
            if spec.exposure.min_days is not None:
                text += ", " + _days("exposure_days", lang, spec.exposure.min_days)
    if spec.min_count > 1:
        text += ", " + _t("min_count", lang, n=spec.min_count)
    return f"{text} {_window(spec.within, lang)}"


def _codes(spec: EventSpec, lang: str) -> str:
    kind = _t(f"kind_{spec.TABLE.split('_')[0]}", lang)
    text = _t("codes", lang, kind=kind, codes=_list(spec.codeset))
    if spec.exclude_codeset:
        text += " " + _t("codes_except", lang, codes=_list(spec.exclude_codeset))
    return text


def _list(codeset: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{code} ({vocabulary})" for vocabulary, code in codeset)


def _window(within: Window | None, lang: str) -> str:
    if within is None:
        return _t("window_none", lang)

    def day(offset: int) -> str:
        if offset == 0:
            return _t("day_index", lang)
        return _days("day_after" if offset > 0 else "day_before", lang, abs(offset))

    return _t("window", lang, start=day(-within.days_before), end=day(within.days_after))


def _value(value: Any, lang: str) -> str:
    parts = []
    for key, op in (("min", "≥"), ("above", ">"), ("max", "≤"), ("below", "<")):
        if getattr(value, key) is not None:
            parts.append(f"{op} {format_number(getattr(value, key), lang)}")
    for key, op, end in (
        ("min_times_upper_normal", "≥", "uln"),
        ("max_times_upper_normal", "≤", "uln"),
        ("min_times_lower_normal", "≥", "lln"),
        ("max_times_lower_normal", "≤", "lln"),
    ):
        if getattr(value, key) is not None:
            parts.append(f"{op} {format_number(getattr(value, key), lang)} × {_t(end, lang)}")
    return f" {_t('and', lang)} ".join(parts)


def _demographics(d: Demographics, lang: str) -> str:
    parts = []
    if d.age is not None:
        if d.age.min is not None and d.age.max is not None:
            parts.append(_t("age_range", lang, min=d.age.min, max=d.age.max))
        elif d.age.min is not None:
            parts.append(_t("age_min", lang, min=d.age.min))
        else:
            parts.append(_t("age_max", lang, max=d.age.max))
    if d.sex is not None:
        sexes = ", ".join(_t(f"sex_{s}", lang) for s in d.sex)
        parts.append(_t("sex", lang, sexes=sexes))
    if d.municipalities is not None:
        parts.append(_t("municipalities", lang, codes=", ".join(d.municipalities)))
    return "; ".join(parts) if parts else _t("anyone", lang)

"""Evaluation of a prevention program, and outcome-based reimbursement.

Given invitations (``person_id`` and ``invitation_date``; a CSV file, or a plan simulated on a
synthetic region) and a program start date:

* **invited**: people invited within ``enrolment_days`` of the start;
* **comparison**: people not invited by the end of follow-up (never, or later: "not yet");
  people invited in between belong to neither group;
* both alive, under observation and scored at the start. Matching is *coarsened exact
  matching*: strata of sex x 5-year age band x baseline risk band (0-2.5-5-7.5-10-15-20+ %);
  strata without people of both groups are dropped;
* outcomes: change from the latest value before the start (within the look-back windows of
  ``inputs.Lookback``) to the latest value in the ``months`` after it, for SBP, total
  cholesterol and HbA1c; and a first cardiovascular event (MI I21-I22, stroke I61/I63/I64, or
  death from I00-I99) within ``months``;
* estimate: the average effect on the invited (ATT), the stratum-weighted difference of means,
  with a normal 95 % confidence interval from the within-stratum variances.

The reimbursement pays per *verified* improvement: a recorded drop of at least ``min_drop``
(program configuration ``reimbursement:``) between a baseline and a follow-up measurement.
It reports the gross payment and the payment attributable to the program (improvements beyond
what matched non-invited people achieved). Counts pass the disclosure policy (under the Cell Key
Method with the key of the people counted, ``privacy.people``; the estimated improvements
beyond the comparison with a key of their own); amounts are computed from disclosed counts so
that they reveal no more than the counts do. All counts are one table with secondary
suppression (a measure's matched people and verified improvements are parts of a group's total,
``privacy.people.PeopleTable``). Estimates resting on fewer than ``MIN_GROUP`` people on either
side, or on a group whose count is suppressed, are withheld.
"""

from __future__ import annotations

__all__ = [
    "EVENT_ICD10",
    "MIN_GROUP",
    "OUTCOME_MEASURES",
    "RISK_BANDS",
    "WITHHELD",
    "Z95",
    "Invitations",
    "add_months",
    "att",
    "evaluate",
    "first_events",
    "follow_up_values",
    "matched_people",
    "read_invitations",
    "simulate_invitations",
    "strata",
    "write_invitations",
]

import csv
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from brygga.cohort.engines import IbisEngine
from brygga.errors import InputError, NotFoundError
from brygga.prevention.inputs import Lookback, extract_inputs, input_engine
from brygga.prevention.inputs_sql import CVD_EVENT_ICD10, cvd_events, latest_key, required
from brygga.prevention.programs import Reimbursement
from brygga.prevention.stratify import population_risk
from brygga.privacy.disclosure import DisclosurePolicy
from brygga.privacy.people import PeopleCounter, PeopleTable, people_counter
from brygga.records.store import Region

RISK_BANDS = (2.5, 5.0, 7.5, 10.0, 15.0, 20.0)
MIN_GROUP = 10
WITHHELD = f"a group has fewer than {MIN_GROUP} people or its count is suppressed"
Z95 = 1.959963984540054
OUTCOME_MEASURES = {"sbp": "8480-6", "total_chol": "NPU01566", "hba1c": "NPU27300"}
EVENT_ICD10 = CVD_EVENT_ICD10


@dataclass(frozen=True)
class Invitations:
    person_id: np.ndarray  # int64
    invitation_date: np.ndarray  # datetime64[D]


def read_invitations(path: Path) -> Invitations:
    """A CSV with columns ``person_id`` and ``invitation_date`` (YYYY-MM-DD)."""
    if not path.is_file():
        raise NotFoundError(f"invitation file {str(path)!r} does not exist")
    ids, days = [], []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"person_id", "invitation_date"} - set(reader.fieldnames or [])
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            try:
                ids.append(int(row["person_id"]))
            except (TypeError, ValueError):
                raise InputError(f"{path}: line {line}: person_id is not a whole number") from None
            try:
                days.append(np.datetime64(date.fromisoformat(row["invitation_date"]), "D"))
            except (TypeError, ValueError):
                raise InputError(
                    f"{path}: line {line}: invitation_date is not a date (YYYY-MM-DD)"
                ) from None
    return Invitations(np.array(ids, np.int64), np.array(days, "datetime64[D]"))


def add_months(day: date, months: int) -> date:
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def follow_up_values(
    engine: IbisEngine, start: date, end: date
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Latest SBP, total cholesterol, HbA1c per person in (start, end]: (ids, values) by
    outcome, ids ascending; the latest as in ``inputs`` (date, then row id)."""
    m = required(engine, "measurement")
    m = m.filter(
        m.measurement_source_value.isin(list(OUTCOME_MEASURES.values())),
        m.value_as_number.notnull() & ~m.value_as_number.isnan(),
        m.measurement_date > start,
        m.measurement_date <= end,
    )
    latest = m.group_by("measurement_source_value", "person_id").aggregate(
        v=m.value_as_number.argmax(latest_key(m.measurement_date, m.measurement_id))
    )
    rows = engine.to_arrow(
        latest.select("measurement_source_value", latest.person_id.cast("int64"), "v").order_by(
            "measurement_source_value", "person_id"
        )
    )
    code = rows.column(0).to_numpy(zero_copy_only=False)
    ids = rows.column(1).to_numpy()
    values = rows.column(2).to_numpy(zero_copy_only=False).astype(np.float64)
    return {name: (ids[code == c], values[code == c]) for name, c in OUTCOME_MEASURES.items()}


def first_events(engine: IbisEngine, start: date, end: date) -> np.ndarray:
    """Person ids with a cardiovascular event in (start, end], ascending."""
    ids = cvd_events(engine, start, end).select("person_id").distinct()
    rows = engine.to_arrow(ids)
    return np.unique(rows.column("person_id").to_numpy()).astype(np.int64)


def strata(sex: np.ndarray, age: np.ndarray, risk: np.ndarray) -> np.ndarray:
    """Stratum key: sex x 5-year age band x baseline risk band."""
    band = np.floor(age / 5).astype(np.int64)
    rband = np.searchsorted(np.array(RISK_BANDS), risk, side="right")
    return ((sex == "female").astype(np.int64) * 100 + band) * 10 + rband


def att(
    stratum: np.ndarray, treated: np.ndarray, y: np.ndarray
) -> tuple[float, float, int, int] | None:
    """Stratified difference of means on the treated: (estimate, SE, n treated, n control).

    Only strata with at least one treated and one control person count (coarsened exact
    matching); each counts by its number of treated people. Variances: within-stratum sample
    variances, pooled across the two groups of a stratum when a group has a single person.
    """
    ok = np.isfinite(y)
    s, t, y = stratum[ok], treated[ok], y[ok]
    if not len(s):
        return None
    keys, inv = np.unique(s, return_inverse=True)
    k = len(keys)
    n_t = np.bincount(inv, weights=t, minlength=k)
    n_c = np.bincount(inv, weights=~t, minlength=k)
    matched = (n_t > 0) & (n_c > 0)
    if not matched.any():
        return None
    sum_t = np.bincount(inv, weights=y * t, minlength=k)
    sum_c = np.bincount(inv, weights=y * ~t, minlength=k)
    sq_t = np.bincount(inv, weights=y * y * t, minlength=k)
    sq_c = np.bincount(inv, weights=y * y * ~t, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        m_t, m_c = sum_t / n_t, sum_c / n_c
        v_t = np.where(n_t > 1, (sq_t - n_t * m_t**2) / (n_t - 1), np.nan)
        v_c = np.where(n_c > 1, (sq_c - n_c * m_c**2) / (n_c - 1), np.nan)
        pooled = (np.nan_to_num(v_t) * np.maximum(n_t - 1, 0) + np.nan_to_num(v_c) * np.maximum(n_c - 1, 0)) / np.maximum(n_t + n_c - 2, 1)  # fmt: skip
    v_t = np.maximum(np.where(np.isnan(v_t), pooled, v_t), 0)
    v_c = np.maximum(np.where(np.isnan(v_c), pooled, v_c), 0)
    w = np.where(matched, n_t, 0) / n_t[matched].sum()
    diff = np.where(matched, m_t - m_c, 0.0)
    estimate = float((w * diff).sum())
    var = float(
        (w**2 * np.where(matched, v_t / np.maximum(n_t, 1) + v_c / np.maximum(n_c, 1), 0)).sum()
    )
    return estimate, float(np.sqrt(var)), int(n_t[matched].sum()), int(n_c[matched].sum())


def matched_people(
    stratum: np.ndarray, treated: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the treated and control people ``att`` counts: a value of ``y`` and a stratum
    holding people of both groups."""
    ok = np.isfinite(y)
    both = np.intersect1d(stratum[ok & treated], stratum[ok & ~treated])
    matched = ok & np.isin(stratum, both)
    return matched & treated, matched & ~treated


def _add_outcome(
    table: PeopleTable, name: str, stratum: np.ndarray, treated: np.ndarray, y: np.ndarray
) -> None:
    """The matched people of one outcome, each group with its never-shown rest (the scored
    people of the group who have no value or no one to match): a reader subtracts one from
    the group's shown total."""
    in_t, in_c = matched_people(stratum, treated, y)
    for group, rows, scored in (("invited", in_t, treated), ("comparison", in_c, ~treated)):
        table.add((name, group), rows)
        table.add_hidden((name, group, "rest"), scored & ~rows)
        table.line(f"{group}_scored", [(name, group), (name, group, "rest")])


def _result(
    shown: dict, name: str, stratum: np.ndarray, treated: np.ndarray, y: np.ndarray, digits: int
) -> dict[str, Any]:
    """An outcome's disclosed group sizes and its estimate, withheld when either group is small
    or its count is suppressed (a mean says something about the people behind it)."""
    doc: dict[str, Any] = {"invited": shown[(name, "invited")], "comparison": shown[(name, "comparison")]}  # fmt: skip
    fit = att(stratum, treated, y)
    if fit is None:
        return {**doc, "estimate": None, "ci95": None, "withheld": "no matched people"}
    est, se, n_t, n_c = fit
    disclosed = [doc[g]["value"] for g in ("invited", "comparison")]
    if min(n_t, n_c) < MIN_GROUP or any(v is None or v < MIN_GROUP for v in disclosed):
        return {**doc, "estimate": None, "ci95": None, "withheld": WITHHELD}
    return {
        **doc,
        "estimate": round(est, digits),
        "se": round(se, digits + 1),
        "ci95": [round(est - Z95 * se, digits), round(est + Z95 * se, digits)],
        "withheld": None,
    }


def evaluate(
    region: Region,
    invitations: Invitations,
    policy: DisclosurePolicy,
    *,
    start: date | None = None,
    months: int = 12,
    enrolment_days: int = 90,
    reimbursement: Reimbursement | None = None,
    lookback: Lookback | None = None,
    engine: IbisEngine | str | None = None,
) -> dict[str, Any]:
    """Matched comparison of invited and not-yet-invited people; see the module docstring.
    ``engine``: duckdb or spark (default: the configured engine)."""
    if months < 1:
        raise InputError("--months must be at least 1")
    if not len(invitations.person_id):
        raise InputError("the invitation list is empty")
    start = start or invitations.invitation_date.min().astype(date)
    end = add_months(start, months)
    period_end = (region.manifest.get("period") or {}).get("end")
    if period_end and end > date.fromisoformat(str(period_end)):
        raise InputError(
            f"follow-up ends {end.isoformat()}, after the region's records end ({period_end}); "
            "choose an earlier start or fewer months"
        )
    runner = input_engine(region, engine)
    inputs = extract_inputs(region, index_date=start, lookback=lookback, engine=runner)
    pr = population_risk(inputs)
    pid = inputs["person_id"]
    day = invitations.invitation_date
    s64, e64 = np.datetime64(start, "D"), np.datetime64(end, "D")
    enrolled = invitations.person_id[(day >= s64) & (day <= s64 + enrolment_days)]
    invited_by_end = invitations.person_id[day <= e64]
    treated = np.isin(pid, enrolled)
    control = ~np.isin(pid, invited_by_end)
    base = (pr.category >= 0) & (treated | control)  # scored at the start, in one group
    stratum = strata(inputs["sex"], inputs["age"], pr.risk_percent)[base]
    t = treated[base]
    everyone = people_counter(policy, region, pid)
    counter = everyone.subset(base)

    ys: dict[str, np.ndarray] = {}
    changes: dict[str, np.ndarray] = {}
    follow = follow_up_values(runner, start, end)
    for name, (ids, values) in follow.items():
        after = np.full(len(pid), np.nan)
        pos = np.searchsorted(pid, ids)
        pos = np.minimum(pos, len(pid) - 1)
        hit = pid[pos] == ids
        after[pos[hit]] = values[hit]
        changes[name] = ys[f"change_{name}"] = (after - inputs[name])[base]
    ys["cvd_event"] = np.isin(pid, first_events(runner, start, end))[base].astype(float)
    rules = reimbursement or Reimbursement()
    improved = {
        name: np.isfinite(change) & (change <= -getattr(rules, name).min_drop)
        for name, change in changes.items()
    }

    # Every count as one table (secondary suppression): a group's matched people and its
    # verified improvements are parts of the group's shown total.
    table = PeopleTable(counter)
    table.add("invited_scored", t)
    table.add("comparison_scored", ~t)
    unscored = treated & ~base
    table.add_count("invited_in_region", int(treated.sum()), everyone.key_sum(treated))
    table.add_hidden_count(
        ("invited", "not scored"), int(unscored.sum()), everyone.key_sum(unscored)
    )
    table.line("invited_in_region", ["invited_scored", ("invited", "not scored")])
    for name, y in ys.items():
        _add_outcome(table, name, stratum, t, y)
    for name, rows in improved.items():
        table.add(("improved", name), rows & t)
        table.add_hidden(("improved", name, "rest"), t & ~rows)
        table.line("invited_scored", [("improved", name), ("improved", name, "rest")])
    # The groups compared are kept; the invited in the region (scored or not) give way first.
    shown = table.disclose(keep=["invited_scored", "comparison_scored"])

    outcomes = {
        name: _result(shown, name, stratum, t, y, 4 if name == "cvd_event" else 2)
        for name, y in ys.items()
    }
    pay = _reimburse(shown, stratum, t, changes, improved, rules, counter)
    return {
        "region": region.name,
        "start": start.isoformat(),
        "follow_up_end": end.isoformat(),
        "months": months,
        "enrolment_days": enrolment_days,
        "raw": policy.raw,
        "disclosure": policy.description,
        "invited_in_region": shown["invited_in_region"],
        "invited_scored": shown["invited_scored"],
        "comparison_scored": shown["comparison_scored"],
        "matching": "coarsened exact: sex x 5-year age band x baseline risk band "
        + "/".join(f"{b:g}" for b in RISK_BANDS)
        + " %",
        "outcomes": outcomes,
        "reimbursement": pay,
    }


def _reimburse(
    shown: dict,
    stratum: np.ndarray,
    treated: np.ndarray,
    changes: dict[str, np.ndarray],
    improved: dict[str, np.ndarray],
    rules: Reimbursement,
    counter: PeopleCounter,
) -> dict[str, Any]:
    out: dict[str, Any] = {"basis": "amounts computed from disclosed counts", "measures": {}}
    gross_total = attributable_total = 0.0
    for name, change in changes.items():
        rule = getattr(rules, name)
        verified = np.isfinite(change)
        better = improved[name]
        disclosed = shown[("improved", name)]
        # Beyond what the comparison achieved: the matched difference in improvement rates
        # times the number of matched invited people (never negative: nothing is clawed back).
        # Not shown when the improvements themselves are suppressed: it would bound them.
        fit = att(stratum[verified], treated[verified], better[verified].astype(float))
        excess = (
            None
            if fit is None or disclosed["value"] is None
            else counter.estimate(max(round(fit[0] * fit[2]), 0), better & treated)
        )
        gross = None if disclosed["value"] is None else disclosed["value"] * rule.payment_sek
        attributable = (
            None
            if excess is None or excess["value"] is None
            else excess["value"] * rule.payment_sek
        )
        gross_total += gross or 0.0
        attributable_total += attributable or 0.0
        out["measures"][name] = {
            "min_drop": rule.min_drop,
            "payment_sek": rule.payment_sek,
            "verified_improvements": disclosed,
            "beyond_comparison": excess,
            "gross_sek": gross,
            "attributable_sek": attributable,
        }
    out["gross_sek"] = gross_total
    out["attributable_sek"] = attributable_total
    return out


def simulate_invitations(
    person_id: np.ndarray, invitation_date: date, *, seed: int = 1, share: float = 0.5
) -> Invitations:
    """Invite a random ``share`` of the given people on one date (for synthetic regions)."""
    rng = np.random.default_rng(seed)
    chosen = np.sort(person_id[rng.random(len(person_id)) < share])
    return Invitations(chosen, np.full(len(chosen), np.datetime64(invitation_date, "D")))


def write_invitations(inv: Invitations, path: Path) -> None:
    from brygga.util import atomic_write_text

    lines = ["person_id,invitation_date"]
    lines += [
        f"{p},{d}"
        for p, d in zip(inv.person_id.tolist(), inv.invitation_date.astype(str), strict=True)
    ]
    atomic_write_text(path, "\n".join(lines) + "\n")

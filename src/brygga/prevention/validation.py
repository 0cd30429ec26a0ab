"""Does the score rank people by their later events? Harrell's C on a region.

``harrell_c`` is Harrell's concordance for right-censored data: over all usable pairs (the
person with the shorter follow-up had an event; the other was still event-free then), the
share where the one with the event had the higher predicted risk; equal risks count one half.
It runs in O(n log n) with a Fenwick tree over risk ranks, vectorized over people sharing a
follow-up day, so a million people take about a second.

``score2_c_statistic`` applies it as issue 5 asks: SCORE2 at an index date ``years`` before
the region's end, among 40-69-year-olds without established CVD and with complete inputs;
events: MI (I21-I22) or stroke (I61, I63, I64) recorded, or death from a cardiovascular cause
(I00-I99), within ``years``; follow-up censored at the end of observation or another death.
"""

from __future__ import annotations

__all__ = ["OUTCOME_ICD10", "CStatistic", "harrell_c", "score2_c_statistic"]

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from brygga.cohort.engines import IbisEngine
from brygga.prevention.inputs import (
    default_index_date,
    extract_inputs,
    index_minus_years,
    input_engine,
)
from brygga.prevention.inputs_sql import CVD_EVENT_ICD10, cvd_events, required
from brygga.prevention.scores import score2
from brygga.records.store import Region

OUTCOME_ICD10 = CVD_EVENT_ICD10


def _fenwick_add(tree: np.ndarray, idx: np.ndarray) -> None:
    """Add 1 at each (1-based) index; repeated indices add repeatedly."""
    n = len(tree) - 1
    idx = idx.copy()
    while idx.size:
        np.add.at(tree, idx, 1)
        idx = idx + (idx & -idx)
        idx = idx[idx <= n]


def _fenwick_sum(tree: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Sum of positions 1..idx for each index (0 gives 0)."""
    total = np.zeros(len(idx), np.int64)
    idx = idx.copy()
    live = idx > 0
    while live.any():
        total[live] += tree[idx[live]]
        idx[live] -= idx[live] & -idx[live]
        live = idx > 0
    return total


def harrell_c(risk: Any, time: Any, event: Any) -> tuple[float, int]:
    """(C, number of usable pairs). Higher risk should mean an earlier event."""
    risk = np.asarray(risk, np.float64)
    time = np.asarray(time, np.float64)
    event = np.asarray(event, bool)
    if not (len(risk) == len(time) == len(event)):
        raise ValueError("risk, time and event must have the same length")
    ranks = np.unique(risk, return_inverse=True)[1].astype(np.int64) + 1  # 1-based dense ranks
    tree = np.zeros(int(ranks.max(initial=0)) + 1, np.int64)
    order = np.argsort(-time, kind="stable")
    t_sorted = time[order]
    bounds = np.flatnonzero(np.diff(t_sorted)) + 1
    concordant = tied = pairs = later = 0
    pending = np.zeros(0, np.int64)  # ranks of the previous time's events, not yet added
    # From the latest follow-up time down: the tree holds everyone still event-free later
    # (and people censored at the same time, who were still at risk then).
    for group in np.split(order, bounds):
        ev = event[group]
        add = np.concatenate([pending, ranks[group[~ev]]])
        if len(add):
            _fenwick_add(tree, add)
            later += len(add)
        pending = ranks[group[ev]]
        if len(pending):
            sums = _fenwick_sum(tree, np.concatenate([pending - 1, pending]))
            below, upto = sums[: len(pending)], sums[len(pending) :]
            concordant += int(below.sum())
            tied += int((upto - below).sum())
            pairs += later * len(pending)
    if pairs == 0:
        return float("nan"), 0
    return (concordant + 0.5 * tied) / pairs, pairs


@dataclass(frozen=True)
class CStatistic:
    c: float
    pairs: int
    people: int
    events: int
    excluded_missing: int
    index_date: date
    follow_up_end: date


def score2_c_statistic(
    region: Region,
    *,
    years: int = 10,
    ages: tuple[int, int] = (40, 69),
    engine: IbisEngine | str | None = None,
) -> CStatistic:
    """SCORE2 C-statistic for ``years``-year CVD events (see the module docstring)."""
    runner = input_engine(region, engine)
    end = default_index_date(region)
    idx = index_minus_years(end, years)
    inputs = extract_inputs(region, index_date=idx, engine=runner)
    c = inputs.columns
    age = np.floor(c["age"])
    cohort = (age >= ages[0]) & (age <= ages[1]) & ~c["established_cvd"] & (c["sex"] != "unknown")
    needed = ("sbp", "total_chol", "hdl")
    complete = (
        cohort
        & (c["smoking_status"] >= 0)
        & np.logical_and.reduce([np.isfinite(c[k]) for k in needed])
    )
    rows = np.flatnonzero(complete)
    result = score2(
        age=c["age"][rows], sex=c["sex"][rows], smoker=c["smoker"][rows], sbp=c["sbp"][rows],
        total_chol=c["total_chol"][rows], hdl=c["hdl"][rows], on_invalid="nan",
    )  # fmt: skip
    valid = np.isfinite(result.risk)
    rows, risk = rows[valid], result.risk[valid]
    time, event = _follow_up(runner, c["person_id"][rows], idx, end)
    value, pairs = harrell_c(risk, time, event)
    return CStatistic(
        c=value,
        pairs=pairs,
        people=len(rows),
        events=int(event.sum()),
        excluded_missing=int((cohort & ~complete).sum()),
        index_date=idx,
        follow_up_end=end,
    )


def _follow_up(
    engine: IbisEngine, person_id: np.ndarray, start: date, end: date
) -> tuple[np.ndarray, np.ndarray]:
    """Days to the first CVD event, or to censoring (observation end, other death, ``end``).

    Three aggregates for everyone (first event, last observation end, death), placed by
    person in numpy: the cohort stays in this process instead of being sent to the engine."""
    events = cvd_events(engine, start, end)
    d = required(engine, "death")
    op = required(engine, "observation_period")
    op = op.filter(op.observation_period_start_date <= start)
    first = _by_person(engine, events.group_by("person_id").aggregate(d=events.d.min()))
    leaves = _by_person(engine, op.group_by(op.person_id.cast("int64").name("person_id"))
                        .aggregate(d=op.observation_period_end_date.max()))  # fmt: skip
    dies = _by_person(engine, d.group_by(d.person_id.cast("int64").name("person_id"))
                      .aggregate(d=d.death_date.min()))  # fmt: skip
    s64, e64 = np.datetime64(start, "D"), np.datetime64(end, "D")
    event_day = _lookup(first, person_id)
    censor = np.minimum(
        np.minimum(_lookup(leaves, person_id, e64), _lookup(dies, person_id, e64)), e64
    )
    event = ~np.isnat(event_day)
    days = np.where(event, event_day, censor) - s64
    return days.astype(np.float64), event


def _by_person(engine: IbisEngine, expr: Any) -> tuple[np.ndarray, np.ndarray]:
    """(person ids ascending, their dates as datetime64[D])."""
    rows = engine.to_arrow(expr.order_by("person_id"))
    ids = rows.column("person_id").to_numpy()
    days = rows.column("d").to_numpy(zero_copy_only=False).astype("datetime64[D]")
    order = np.argsort(ids, kind="stable")  # engines may return their rows in any order
    return ids[order], days[order]


def _lookup(
    found: tuple[np.ndarray, np.ndarray],
    person_id: np.ndarray,
    missing: np.datetime64 = np.datetime64("NaT"),
) -> np.ndarray:
    """Each person's date in ``found`` (``missing`` for those without one)."""
    ids, days = found
    out = np.full(len(person_id), missing, "datetime64[D]")
    if len(ids) == 0:
        return out
    pos = np.minimum(np.searchsorted(ids, person_id), len(ids) - 1)
    hit = ids[pos] == person_id
    out[hit] = days[pos[hit]]
    return np.where(np.isnat(out), missing, out)

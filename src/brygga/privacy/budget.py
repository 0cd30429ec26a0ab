"""Differential-privacy budgets for approved data projects.

A data project gets a privacy-loss budget (epsilon, and delta for Gaussian noise) in the
operational database. Every query (count, grouped count, histogram, mean) is an OpenDP
measurement; its privacy loss is read from OpenDP (``measurement.map(1)``: one person added or
removed), charged to the project, and only then is the measurement run. A query that would
exceed the budget is refused, saying what is left; nothing is released. Noisy counts from 1 to
the disclosure threshold - 1 are withheld (None), like every other count that leaves.

Charging is one transaction that locks the budget row before reading it (SQLite: ``BEGIN
IMMEDIATE``; PostgreSQL: ``SELECT ... FOR UPDATE``), so concurrent queries cannot overspend.
Privacy losses add up (basic composition), the conservative rule.
"""

from __future__ import annotations

__all__ = [
    "TOLERANCE",
    "BudgetExceeded",
    "BudgetStatus",
    "DPResult",
    "ProjectQueries",
    "all_budgets",
    "budget_status",
    "charge",
    "create_budget",
]

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
from sqlalchemy import select

from brygga.db.session import session, write_session
from brygga.errors import InputError, NotFoundError, PermissionDenied
from brygga.privacy.models import PrivacyBudget, PrivacySpend
from brygga.privacy.noise import calibrate, noise_step, opendp

TOLERANCE = 1e-9  # sums of floats such as 0.1 + 0.2 must not refuse an exact fit


class BudgetExceeded(PermissionDenied):
    """The query would spend more privacy-loss budget than the project has left."""


@dataclass(frozen=True)
class BudgetStatus:
    project_id: str
    epsilon_total: float
    delta_total: float
    epsilon_spent: float
    delta_spent: float
    queries: int

    @property
    def epsilon_left(self) -> float:
        return max(0.0, self.epsilon_total - self.epsilon_spent)

    @property
    def delta_left(self) -> float:
        return max(0.0, self.delta_total - self.delta_spent)

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": self.project_id,
            "epsilon": {"total": self.epsilon_total, "spent": self.epsilon_spent,
                        "left": self.epsilon_left},
            "delta": {"total": self.delta_total, "spent": self.delta_spent,
                      "left": self.delta_left},
            "queries": self.queries,
        }  # fmt: skip


def _status(s: Any, budget: PrivacyBudget) -> BudgetStatus:
    queries = len(
        s.execute(select(PrivacySpend.id).where(PrivacySpend.project_id == budget.project_id))
        .scalars()
        .all()
    )
    return BudgetStatus(
        budget.project_id,
        budget.epsilon_total,
        budget.delta_total,
        budget.epsilon_spent,
        budget.delta_spent,
        queries,
    )


def create_budget(
    project_id: str, epsilon: float, delta: float = 0.0, *, url: str | None = None
) -> BudgetStatus:
    """Give an approved project its budget (once; a budget is never topped up silently)."""
    if not project_id or len(project_id) > 100:
        raise InputError("a project id is 1 to 100 characters")
    if not epsilon > 0:
        raise InputError(f"the epsilon budget must be positive, not {epsilon}")
    if not 0 <= delta < 1:
        raise InputError(f"the delta budget must lie in [0, 1), not {delta}")
    with write_session(url) as s:
        if s.get(PrivacyBudget, project_id) is not None:
            raise InputError(f"project {project_id!r} already has a privacy budget")
        budget = PrivacyBudget(
            project_id=project_id,
            epsilon_total=float(epsilon),
            delta_total=float(delta),
            epsilon_spent=0.0,
            delta_spent=0.0,
        )
        s.add(budget)
        s.flush()
        return _status(s, budget)


def all_budgets(s: Any) -> list[BudgetStatus]:
    """Every project's budget and spending, for the data stewards' overview."""
    budgets = s.execute(select(PrivacyBudget).order_by(PrivacyBudget.project_id)).scalars()
    return [_status(s, b) for b in budgets]


def budget_status(project_id: str, *, url: str | None = None) -> BudgetStatus:
    with session(url) as s:
        budget = s.get(PrivacyBudget, project_id)
        if budget is None:
            raise NotFoundError(f"project {project_id!r} has no privacy budget")
        return _status(s, budget)


def charge(
    project_id: str,
    epsilon: float,
    delta: float = 0.0,
    *,
    query: str,
    user: str | None = None,
    url: str | None = None,
) -> BudgetStatus:
    """Record a query's privacy loss, or refuse it if the budget cannot cover it."""
    with write_session(url) as s:
        budget = s.execute(
            select(PrivacyBudget).where(PrivacyBudget.project_id == project_id).with_for_update()
        ).scalar_one_or_none()
        if budget is None:
            raise NotFoundError(f"project {project_id!r} has no privacy budget")
        eps_left = budget.epsilon_total - budget.epsilon_spent
        delta_left = budget.delta_total - budget.delta_spent
        if epsilon > eps_left + TOLERANCE or delta > delta_left + TOLERANCE:
            raise BudgetExceeded(
                f"project {project_id!r}: this query needs epsilon {epsilon:.4g}"
                + (f" and delta {delta:.3g}" if delta else "")
                + f", but only epsilon {max(eps_left, 0):.4g} and delta {max(delta_left, 0):.3g}"
                f" are left of {budget.epsilon_total:.4g} and {budget.delta_total:.3g}; "
                "the query was not run"
            )
        budget.epsilon_spent += epsilon
        budget.delta_spent += delta
        s.add(
            PrivacySpend(
                project_id=project_id, query=query[:200], epsilon=epsilon, delta=delta, user=user
            )
        )
        s.flush()
        return _status(s, budget)


# --- Queries through OpenDP -----------------------------------------------------------------


@dataclass(frozen=True)
class DPResult:
    value: Any
    epsilon: float
    delta: float
    mechanism: str
    budget: BudgetStatus

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "mechanism": self.mechanism,
            "budget": self.budget.as_dict(),
        }


class ProjectQueries:
    """Differentially private queries charged to one project's budget."""

    def __init__(self, project_id: str, *, user: str | None = None, url: str | None = None):
        self.project_id = project_id
        self.user = user
        self.url = url
        self.dp = opendp()
        from brygga.privacy.disclosure import load_settings

        self.threshold = load_settings().threshold

    def _shown(self, value: Any) -> int | None:
        """A noisy count, never below 0; one from 1 to threshold-1 is withheld (None), as every
        count leaving the platform is (security property 2; post-processing keeps the DP
        guarantee)."""
        v = max(int(value), 0)
        return None if 0 < v < self.threshold else v

    def _release(
        self, measurement: Any, data: Any, eps: float, delta: float, mechanism: str, query: str
    ) -> tuple[Any, BudgetStatus]:
        status = charge(self.project_id, eps, delta, query=query, user=self.user, url=self.url)
        return measurement(data), status

    def count(
        self, rows: Sequence[Any], epsilon: float, *, mechanism: str = "laplace",
        delta: float = 0.0,
    ) -> DPResult:  # fmt: skip
        """How many rows (e.g. the eligible people of a cohort)."""
        dp = self.dp
        space = dp.vector_domain(dp.atom_domain(T=int)), dp.symmetric_distance()

        def build(scale: float) -> Any:
            return space >> dp.t.then_count() >> noise_step(dp, mechanism, scale)

        c = calibrate(dp, build, mechanism, epsilon, delta)
        m, eps, dlt = c.measurement, c.epsilon, c.delta
        value, status = self._release(m, [0] * len(rows), eps, dlt, mechanism, "count")
        return DPResult(self._shown(value), eps, dlt, mechanism, status)

    def grouped_count(
        self, groups: Sequence[str], categories: Sequence[str], epsilon: float, *,
        mechanism: str = "laplace", delta: float = 0.0,
    ) -> DPResult:  # fmt: skip
        """Rows per category (the categories are public; others are counted apart as
        ``"(other)"``)."""
        dp = self.dp
        cats = [str(c) for c in categories]
        if len(set(cats)) != len(cats) or not cats:
            raise InputError("the categories must be distinct and at least one")
        space = dp.vector_domain(dp.atom_domain(T=str)), dp.symmetric_distance()

        def build(scale: float) -> Any:
            return (
                space
                >> dp.t.then_count_by_categories(categories=cats)
                >> noise_step(dp, mechanism, scale)
            )

        c = calibrate(dp, build, mechanism, epsilon, delta)
        m, eps, dlt = c.measurement, c.epsilon, c.delta
        values, status = self._release(
            m, [str(g) for g in groups], eps, dlt, mechanism, f"grouped count ({len(cats)})"
        )
        labels = [*cats, "(other)"]
        return DPResult(
            {k: self._shown(v) for k, v in zip(labels, values, strict=True)},
            eps,
            dlt,
            mechanism,
            status,
        )

    def histogram(
        self, values: Sequence[float], edges: Sequence[float], epsilon: float, *,
        mechanism: str = "laplace", delta: float = 0.0,
    ) -> DPResult:  # fmt: skip
        """Rows per bin ``[edges[i], edges[i+1])``; values outside go to ``"(other)"``."""
        edges = [float(e) for e in edges]
        if len(edges) < 2 or any(b <= a for a, b in pairwise(edges)):
            raise InputError("histogram edges must be at least two increasing numbers")
        labels = [f"[{a:g}, {b:g})" for a, b in pairwise(edges)]
        x = np.asarray(values, dtype=float)
        index = np.searchsorted(edges, x, side="right") - 1
        inside = (index >= 0) & (index < len(labels))
        groups = [labels[i] if ok else "(other)" for i, ok in zip(index, inside, strict=True)]
        return self.grouped_count(groups, labels, epsilon, mechanism=mechanism, delta=delta)

    def mean(
        self, values: Sequence[float], bounds: tuple[float, float], epsilon: float
    ) -> DPResult:
        """Mean of values clamped to ``bounds``: a noisy sum over a noisy count (Laplace, the
        budget split in half), clamped to the bounds."""
        lo, hi = float(bounds[0]), float(bounds[1])
        if not lo < hi:
            raise InputError("mean bounds must be (low, high) with low < high")
        dp = self.dp
        space = dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.symmetric_distance()

        def build_sum(scale: float) -> Any:
            return (
                space
                >> dp.t.then_clamp(bounds=(lo, hi))
                >> dp.t.then_sum()
                >> dp.m.then_laplace(scale=scale)
            )

        def build_count(scale: float) -> Any:
            return space >> dp.t.then_count() >> dp.m.then_laplace(scale=scale)

        m_sum = calibrate(dp, build_sum, "laplace", epsilon / 2, 0.0).measurement
        m_count = calibrate(dp, build_count, "laplace", epsilon / 2, 0.0).measurement
        both = dp.c.make_composition([m_sum, m_count])
        spent = float(both.map(1))
        data = [float(v) for v in values if np.isfinite(v)]
        (total, n), status = self._release(both, data, spent, 0.0, "laplace", "mean")
        mean = min(max(float(total) / max(int(n), 1), lo), hi)
        return DPResult(mean, spent, 0.0, "laplace", status)

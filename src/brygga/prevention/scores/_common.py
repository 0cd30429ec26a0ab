"""What the cardiovascular scores share: models, risk regions, recalibration, rounding,
categories and the result type."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import numpy as np

from brygga.errors import InputError
from brygga.prevention.ranges import PLAUSIBLE, Invalid, Range, Validator

RISK_REGIONS: tuple[str, ...] = ("low", "moderate", "high", "very-high")
SWEDEN_RISK_REGION = "moderate"  # ESC 2021: Sweden is in the moderate-risk region

SCORE2_CATEGORIES: tuple[str, ...] = ("low-to-moderate", "high", "very-high")
DIABETES_CATEGORIES: tuple[str, ...] = ("low", "moderate", "high", "very-high")


@dataclass(frozen=True)
class Model:
    """A cardiovascular risk model: its key, name, valid ages and outcome."""

    key: str
    name: str
    ages: Range
    categories: tuple[str, ...]
    outcome: str
    reference: str


MODELS: dict[str, Model] = {
    m.key: m
    for m in (
        Model(
            "score2",
            "SCORE2",
            Range(40, 69, "years"),
            SCORE2_CATEGORIES,
            "10-year risk of fatal and non-fatal cardiovascular disease",
            "SCORE2 working group, Eur Heart J 2021;42:2439 (doi:10.1093/eurheartj/ehab309)",
        ),
        Model(
            "score2-op",
            "SCORE2-OP",
            Range(70, 89, "years"),
            SCORE2_CATEGORIES,
            "10-year risk of fatal and non-fatal cardiovascular disease",
            "SCORE2-OP working group, Eur Heart J 2021;42:2455 (doi:10.1093/eurheartj/ehab312)",
        ),
        Model(
            "score2-diabetes",
            "SCORE2-Diabetes",
            Range(40, 69, "years"),
            DIABETES_CATEGORIES,
            "10-year risk of fatal and non-fatal cardiovascular disease in type 2 diabetes",
            "SCORE2-Diabetes working group, Eur Heart J 2023 (doi:10.1093/eurheartj/ehad260)",
        ),
    )
}


def check_region(region: str) -> str:
    """The canonical region name; accepts "very high" and "very_high" for "very-high"."""
    key = str(region).strip().lower().replace(" ", "-").replace("_", "-")
    if key not in RISK_REGIONS:
        raise InputError(f"risk region must be one of {', '.join(RISK_REGIONS)}")
    return key


def recalibrated_risk(lp_offset: np.ndarray, s0: float, scale1: float, scale2: float) -> np.ndarray:
    """Calibrated 10-year risk from a (centred) linear predictor.

    The reference form is p0 = 1 - S0^exp(x) and risk = 1 - exp(-exp(s1 + s2 ln(-ln(1 - p0)))).
    Since -ln(1 - p0) = exp(x) (-ln S0), ln(-ln(1 - p0)) = x + ln(-ln S0) exactly; using that
    avoids cancellation in 1 - p0 for very small risks. ``-expm1`` keeps low risks precise.
    """
    return -np.expm1(-np.exp(scale1 + scale2 * (lp_offset + np.log(-np.log(s0)))))


def round_half_up(values: np.ndarray | float, decimals: int = 1) -> np.ndarray:
    """Round non-negative values half up, exactly as ``decimal.ROUND_HALF_UP`` rounds the
    value as Python prints it (its repr): 20.45 -> 20.5, 10.049999999999999 -> 10.0.

    The bulk is vectorized; the rare values within a hair of a tie, where the binary product
    ``x * 10`` may fall on either side, are settled one by one with ``decimal``.
    """
    x = np.asarray(values, dtype=np.float64)
    scaled = x * 10.0**decimals
    out = np.floor(scaled + 0.5) / 10.0**decimals
    with np.errstate(invalid="ignore"):
        near_tie = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6
    quantum = Decimal(1).scaleb(-decimals)
    for i in np.flatnonzero(near_tie):
        exact = Decimal(repr(float(x.flat[i]))).quantize(quantum, rounding=ROUND_HALF_UP)
        out.flat[i] = float(exact)
    return out


def score2_category(risk_percent: np.ndarray, age: np.ndarray) -> np.ndarray:
    """ESC 2021 categories for SCORE2/SCORE2-OP: age-dependent thresholds (index, -1 if NaN).

    <50 years: <2.5 / 2.5 to <7.5 / >=7.5 %; 50-69: <5 / 5 to <10 / >=10 %;
    70+: <7.5 / 7.5 to <15 / >=15 % (low-to-moderate / high / very high).
    """
    years = np.floor(age)
    low_edge = np.select([years < 50, years < 70], [2.5, 5.0], 7.5)
    high_edge = np.select([years < 50, years < 70], [7.5, 10.0], 15.0)
    codes = (risk_percent >= low_edge).astype(np.int8) + (risk_percent >= high_edge)
    return np.where(np.isnan(risk_percent), np.int8(-1), codes).astype(np.int8)


def diabetes_category(risk_percent: np.ndarray) -> np.ndarray:
    """ESC 2023 categories for SCORE2-Diabetes: <5 / 5 to <10 / 10 to <20 / >=20 %."""
    codes = sum((risk_percent >= edge).astype(np.int8) for edge in (5.0, 10.0, 20.0))
    return np.where(np.isnan(risk_percent), np.int8(-1), codes).astype(np.int8)


@dataclass(frozen=True)
class RiskResult:
    """Scores for one or more people under one model and risk region.

    ``risk`` is the 10-year risk as a fraction (NaN where a row is invalid), ``risk_percent``
    the same rounded half up to one decimal, ``category`` an index into ``categories`` (-1 if
    invalid), decided on ``risk_percent`` so the printed figure and the category always agree,
    and ``invalid`` a bit mask of ``ranges.Invalid`` per row (0 = valid).
    """

    model: str
    risk_region: str
    risk: np.ndarray
    risk_percent: np.ndarray
    category: np.ndarray
    invalid: np.ndarray

    @property
    def categories(self) -> tuple[str, ...]:
        return MODELS[self.model].categories

    def __len__(self) -> int:
        return len(self.risk)

    def category_labels(self) -> list[str | None]:
        labels = self.categories
        return [labels[c] if c >= 0 else None for c in self.category.tolist()]

    def row(self, i: int = 0) -> dict[str, object]:
        """One row as a plain dict (for JSON output)."""
        model = MODELS[self.model]
        ok = self.invalid[i] == 0
        return {
            "model": self.model,
            "model_name": model.name,
            "risk_region": self.risk_region,
            "risk_percent": float(self.risk_percent[i]) if ok else None,
            "category": self.categories[self.category[i]] if ok else None,
            "outcome": model.outcome,
            "valid_ages": {"min": int(model.ages.low), "max": int(model.ages.high)},
            "reference": model.reference,
        }


def build_result(
    model: str, region: str, risk: np.ndarray, age: np.ndarray, invalid: np.ndarray
) -> RiskResult:
    percent = round_half_up(risk * 100.0)
    if model == "score2-diabetes":
        category = diabetes_category(percent)
    else:
        category = score2_category(percent, age)
    return RiskResult(model, region, risk, percent, category, invalid)


def cardio_inputs(check: Validator, cols: dict[str, np.ndarray], model: str) -> dict:
    """Check the inputs all three cardiovascular models share; float arrays by short name."""
    x = {
        "female": check.female(cols["sex"]),
        "age": check.number("age", cols["age"], MODELS[model].ages, Invalid.AGE, years=True),
        "smoke": check.yes_no("smoker", cols["smoker"], Invalid.SMOKER).astype(np.float64),
        "sbp": check.number("sbp", cols["sbp"], PLAUSIBLE["sbp"], Invalid.SBP),
        "tc": check.number("total_chol", cols["total_chol"], PLAUSIBLE["total_chol"], Invalid.TOTAL_CHOL),
        "hdl": check.number("hdl", cols["hdl"], PLAUSIBLE["hdl"], Invalid.HDL),
    }  # fmt: skip
    check.mark(x["hdl"] >= x["tc"], Invalid.HDL, "hdl must be lower than total_chol")
    return x

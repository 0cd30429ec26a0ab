"""SCORE2-OP (2021): 10-year CVD risk in older people, ages 70-89.

Coefficients, mean linear predictor, baseline survival and recalibration as in
/work/shared/reference/risk-scores.md (SCORE2-OP working group, Eur Heart J 2021;42:2455).
Unlike SCORE2, the inputs are centred but not scaled, and the linear predictor is centred on
its derivation mean before the baseline survival is applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from brygga.prevention.ranges import Invalid, OnInvalid, Validator, columns
from brygga.prevention.scores._common import (
    SWEDEN_RISK_REGION,
    RiskResult,
    build_result,
    cardio_inputs,
    check_region,
    recalibrated_risk,
)


@dataclass(frozen=True)
class OpCoefficients:
    a: float
    dm: float
    smoke: float
    s: float
    t: float
    h: float
    a_dm: float
    a_smoke: float
    a_s: float
    a_t: float
    a_h: float
    mean_lp: float
    s0: float


# Index 0 = men, 1 = women.
SCORE2_OP = (
    OpCoefficients(0.0634, 0.4245, 0.3524, 0.0094, 0.0850, -0.3564,
                   -0.0174, -0.0247, -0.0005, 0.0073, 0.0091, 0.0929, 0.7576),
    OpCoefficients(0.0789, 0.6010, 0.4921, 0.0102, 0.0605, -0.3040,
                   -0.0107, -0.0255, -0.0004, -0.0009, 0.0154, 0.2290, 0.8082),
)  # fmt: skip

RECALIBRATION_OP: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "low": ((-0.34, 1.19), (-0.52, 1.01)),
    "moderate": ((0.01, 1.25), (-0.10, 1.10)),
    "high": ((0.08, 1.15), (0.38, 1.09)),
    "very-high": ((0.05, 0.70), (0.38, 0.69)),
}


def score2_op(
    *,
    age: Any,
    sex: Any,
    smoker: Any,
    sbp: Any,
    total_chol: Any,
    hdl: Any,
    diabetes: Any = False,
    risk_region: str = SWEDEN_RISK_REGION,
    on_invalid: OnInvalid = "raise",
) -> RiskResult:
    """SCORE2-OP for ages 70-89; diabetes (any type) is one of its terms."""
    region = check_region(risk_region)
    cols = columns(
        age=age, sex=sex, smoker=smoker, sbp=sbp, total_chol=total_chol, hdl=hdl, dm=diabetes
    )
    check = Validator("SCORE2-OP", len(cols["age"]), on_invalid)
    x = cardio_inputs(check, cols, "score2-op")
    x["dm"] = check.yes_no("diabetes", cols["dm"], Invalid.DIABETES).astype(np.float64)
    valid = check.valid()
    risk = np.full(len(valid), np.nan)
    for female in (0, 1):
        rows = valid & (x["female"] == bool(female))
        if not rows.any():
            continue
        c = SCORE2_OP[female]
        lp = _linear_predictor(c, {k: v[rows] for k, v in x.items()})
        scale1, scale2 = RECALIBRATION_OP[region][female]
        risk[rows] = recalibrated_risk(lp - c.mean_lp, c.s0, scale1, scale2)
    return build_result("score2-op", region, risk, x["age"], check.reasons)


def _linear_predictor(c: OpCoefficients, x: dict[str, np.ndarray]) -> np.ndarray:
    a = x["age"] - 73.0
    s = x["sbp"] - 150.0
    t = x["tc"] - 6.0
    h = x["hdl"] - 1.4
    dm, smoke = x["dm"], x["smoke"]
    return (
        c.a * a
        + c.dm * dm
        + c.smoke * smoke
        + c.s * s
        + c.t * t
        + c.h * h
        + a * (c.a_dm * dm + c.a_smoke * smoke + c.a_s * s + c.a_t * t + c.a_h * h)
    )

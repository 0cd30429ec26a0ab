"""The generator's outcome model: cardiovascular hazard from SCORE2 / SCORE2-OP.

SCORE2 is a Cox model: its linear predictor gives each person's hazard ratio, and a regional
recalibration then maps the derivation cohorts' risk onto each risk region's incidence. The
simulation draws events from the model's own hazard, ``H0 x exp(LP)``, recovered from the
validated scores of ``brygga.prevention.scores`` by undoing the moderate-region recalibration;
``params.CVD_MULTIPLIER`` then scales the level to Sweden's incidence. So the events follow the
very model the prevention tools evaluate, with its published hazard ratios.

The scores are defined for ages 40-89; outside that the simulation extrapolates: below 40 the
hazard at 40 shrinks by 10 % a year of age, above 89 the hazard at 89 is used.
"""

from __future__ import annotations

import numpy as np

from brygga.prevention.scores import (
    SCORE2_OP_RECALIBRATION,
    SCORE2_RECALIBRATION,
    score2,
    score2_op,
)

_YOUNG_SLOPE = 0.10
_REGION = "moderate"


def cvd_yearly_hazard(
    age: np.ndarray,
    male: np.ndarray,
    smoker: np.ndarray,
    sbp: np.ndarray,
    tc: np.ndarray,
    hdl: np.ndarray,
    diabetes: np.ndarray,
) -> np.ndarray:
    """Yearly CVD hazard of the derivation model (before regional recalibration)."""
    sex = np.where(male, "male", "female")
    clamped = np.clip(age, 40.0, 89.0)
    hazard = np.zeros(len(age))
    young = clamped < 70
    for rows, model, table in (
        (young, score2, SCORE2_RECALIBRATION),
        (~young, score2_op, SCORE2_OP_RECALIBRATION),
    ):
        if not rows.any():
            continue
        risk = model(
            age=clamped[rows],
            sex=sex[rows],
            smoker=smoker[rows],
            sbp=sbp[rows],
            total_chol=tc[rows],
            hdl=hdl[rows],
            diabetes=diabetes[rows],
            risk_region=_REGION,
            on_invalid="nan",
        ).risk
        (m1, m2), (f1, f2) = table[_REGION]
        s1 = np.where(male[rows], m1, f1)
        s2 = np.where(male[rows], m2, f2)
        risk = np.clip(np.nan_to_num(risk, nan=0.0), 1e-9, 1 - 1e-9)
        # calibrated: ln(-ln(1-r)) = s1 + s2 ln(-ln(1-p0))  =>  -ln(1-p0) = H0 exp(LP)
        hazard[rows] = np.exp((np.log(-np.log1p(-risk)) - s1) / s2) / 10
    return hazard * np.exp(-_YOUNG_SLOPE * np.maximum(40.0 - age, 0.0))

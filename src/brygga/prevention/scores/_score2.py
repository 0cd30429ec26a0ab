"""SCORE2 (2021) and SCORE2-Diabetes (2023): 10-year CVD risk at ages 40-69.

Coefficients, baseline survival and regional recalibration as in
/work/shared/reference/risk-scores.md (SCORE2 working group, Eur Heart J 2021;42:2439;
SCORE2-Diabetes working group, Eur Heart J 2023, doi:10.1093/eurheartj/ehad260).
SCORE2-Diabetes shares SCORE2's baseline survival and recalibration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from brygga.prevention.ranges import PLAUSIBLE, Invalid, OnInvalid, Validator, columns
from brygga.prevention.scores._common import (
    SWEDEN_RISK_REGION,
    RiskResult,
    build_result,
    cardio_inputs,
    check_region,
    recalibrated_risk,
)


@dataclass(frozen=True)
class Coefficients:
    """Log hazard ratios for one sex; the diabetes-only terms are 0 in plain SCORE2."""

    cage: float
    smoke: float
    csbp: float
    dm: float
    ctc: float
    chdl: float
    cage_smoke: float
    cage_csbp: float
    cage_ctc: float
    cage_chdl: float
    cage_dm: float
    dm_cagediab: float = 0.0
    chba: float = 0.0
    cegfr: float = 0.0
    cegfr2: float = 0.0
    chba_cage: float = 0.0
    cegfr_cage: float = 0.0


# Index 0 = men, 1 = women (``female`` as an index).
SCORE2 = (
    Coefficients(0.3742, 0.6012, 0.2777, 0.6457, 0.1458, -0.2698,
                 -0.0755, -0.0255, -0.0281, 0.0426, -0.0983),
    Coefficients(0.4648, 0.7744, 0.3131, 0.8096, 0.1002, -0.2606,
                 -0.1088, -0.0277, -0.0226, 0.0613, -0.1272),
)  # fmt: skip
SCORE2_DIABETES = (
    Coefficients(0.5368, 0.4774, 0.1322, 0.6457, 0.1102, -0.1087,
                 -0.0672, -0.0268, -0.0181, 0.0095, -0.0983,
                 dm_cagediab=-0.0998, chba=0.0955, cegfr=-0.0591, cegfr2=0.0058,
                 chba_cage=-0.0134, cegfr_cage=0.0115),
    Coefficients(0.6624, 0.6139, 0.1421, 0.8096, 0.1127, -0.1568,
                 -0.1122, -0.0167, -0.0200, 0.0186, -0.1272,
                 dm_cagediab=-0.1180, chba=0.1173, cegfr=-0.0640, cegfr2=0.0062,
                 chba_cage=-0.0196, cegfr_cage=0.0169),
)  # fmt: skip
BASELINE_SURVIVAL = (0.9605, 0.9776)  # 10-year S0, men / women

# Regional recalibration (scale1, scale2), men / women.
RECALIBRATION: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "low": ((-0.5699, 0.7476), (-0.7380, 0.7019)),
    "moderate": ((-0.1565, 0.8009), (-0.3143, 0.7701)),
    "high": ((0.3207, 0.9360), (0.5710, 0.9369)),
    "very-high": ((0.5836, 0.8294), (0.9412, 0.8329)),
}


def score2(
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
    """SCORE2 for ages 40-69. Cholesterol in mmol/L, SBP in mmHg, sex "male"/"female".

    ``diabetes`` is a term of the published model; ESC 2021 scores people with type 2
    diabetes with SCORE2-Diabetes instead (see ``score2_diabetes``).
    """
    region = check_region(risk_region)
    cols = columns(
        age=age, sex=sex, smoker=smoker, sbp=sbp, total_chol=total_chol, hdl=hdl, dm=diabetes
    )
    check = Validator("SCORE2", len(cols["age"]), on_invalid)
    x = cardio_inputs(check, cols, "score2")
    x["dm"] = check.yes_no("diabetes", cols["dm"], Invalid.DIABETES).astype(np.float64)
    risk = _risk(SCORE2, region, x, check.valid())
    return build_result("score2", region, risk, x["age"], check.reasons)


def score2_diabetes(
    *,
    age: Any,
    sex: Any,
    smoker: Any,
    sbp: Any,
    total_chol: Any,
    hdl: Any,
    hba1c: Any,
    egfr: Any,
    age_at_diagnosis: Any = np.nan,
    diabetes: Any = True,
    risk_region: str = SWEDEN_RISK_REGION,
    on_invalid: OnInvalid = "raise",
) -> RiskResult:
    """SCORE2-Diabetes for people aged 40-69, meant for type 2 diabetes.

    HbA1c in mmol/mol (IFCC), eGFR in mL/min/1.73m² (CKD-EPI; see ``prevention.egfr``).
    ``diabetes`` is a term of the published model, so a person without diabetes is scored
    too, as the reference implementations do (RiskScorescvd's ``SCORE2_Diabetes``, MDCalc):
    the diabetes terms (dm, age x dm, dm x age at diagnosis) are 0, HbA1c and eGFR still
    count, and ``age_at_diagnosis`` is needed only where ``diabetes`` holds (ignored elsewhere).
    """
    region = check_region(risk_region)
    cols = columns(
        age=age,
        sex=sex,
        smoker=smoker,
        sbp=sbp,
        total_chol=total_chol,
        hdl=hdl,
        age_at_diagnosis=age_at_diagnosis,
        hba1c=hba1c,
        egfr=egfr,
        dm=diabetes,
    )
    check = Validator("SCORE2-Diabetes", len(cols["age"]), on_invalid)
    x = cardio_inputs(check, cols, "score2-diabetes")
    dm = check.yes_no("diabetes", cols["dm"], Invalid.DIABETES)
    x["dm"] = dm.astype(np.float64)
    # Without diabetes the age at diagnosis enters only multiplied by dm = 0: any valid
    # placeholder (the current age) keeps it from being checked or turning the sum into NaN.
    x["age_dx"] = check.number(
        "age_at_diagnosis",
        np.where(dm, cols["age_at_diagnosis"], x["age"]),
        PLAUSIBLE["age_at_diagnosis"],
        Invalid.AGE_AT_DIAGNOSIS,
    )
    check.mark(
        x["age_dx"] > x["age"], Invalid.AGE_AT_DIAGNOSIS, "age_at_diagnosis must not exceed age"
    )
    x["hba1c"] = check.number("hba1c", cols["hba1c"], PLAUSIBLE["hba1c"], Invalid.HBA1C)
    x["egfr"] = check.number("egfr", cols["egfr"], PLAUSIBLE["egfr"], Invalid.EGFR)
    risk = _risk(SCORE2_DIABETES, region, x, check.valid())
    return build_result("score2-diabetes", region, risk, x["age"], check.reasons)


def _risk(
    table: tuple[Coefficients, Coefficients],
    region: str,
    x: dict[str, np.ndarray],
    valid: np.ndarray,
) -> np.ndarray:
    """Risk per row; computed for valid rows only, each sex with its own scalar constants."""
    risk = np.full(len(valid), np.nan)
    for female in (0, 1):
        rows = valid & (x["female"] == bool(female))
        if not rows.any():
            continue
        lp = _linear_predictor(table[female], {k: v[rows] for k, v in x.items()})
        scale1, scale2 = RECALIBRATION[region][female]
        risk[rows] = recalibrated_risk(lp, BASELINE_SURVIVAL[female], scale1, scale2)
    return risk


def _linear_predictor(c: Coefficients, x: dict[str, np.ndarray]) -> np.ndarray:
    cage = (x["age"] - 60.0) / 5.0
    csbp = (x["sbp"] - 120.0) / 20.0
    ctc = x["tc"] - 6.0
    chdl = (x["hdl"] - 1.3) / 0.5
    smoke, dm = x["smoke"], x["dm"]
    lp = (
        c.cage * cage
        + c.smoke * smoke
        + c.csbp * csbp
        + c.dm * dm
        + c.ctc * ctc
        + c.chdl * chdl
        + cage * (c.cage_smoke * smoke + c.cage_csbp * csbp + c.cage_ctc * ctc)
        + cage * (c.cage_chdl * chdl + c.cage_dm * dm)
    )
    if "hba1c" in x:
        cagediab = (x["age_dx"] - 50.0) / 5.0
        chba = (x["hba1c"] - 31.0) / 9.34
        cegfr = (np.log(x["egfr"]) - 4.5) / 0.15
        lp += (
            c.dm_cagediab * dm * cagediab
            + c.chba * chba
            + c.cegfr * cegfr
            + c.cegfr2 * cegfr * cegfr
            + c.chba_cage * chba * cage
            + c.cegfr_cage * cegfr * cage
        )
    return lp

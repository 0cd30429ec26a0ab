"""One person's cardiovascular risk, as ``brygga risk-calc`` asks for it.

Chooses the model when none is given (ESC 2021: SCORE2-OP from 70, SCORE2-Diabetes for type 2
diabetes, else SCORE2), refuses inputs that the chosen model would silently ignore, and turns
a creatinine value into eGFR (CKD-EPI 2021) for SCORE2-Diabetes.
"""

from __future__ import annotations

from brygga.errors import InputError
from brygga.prevention.egfr import ckd_epi_2021
from brygga.prevention.scores._common import MODELS, SWEDEN_RISK_REGION, RiskResult, round_half_up
from brygga.prevention.scores._score2 import score2, score2_diabetes
from brygga.prevention.scores._score2_op import score2_op


def choose_model(age: float, diabetes: bool) -> str:
    if age >= 70:
        return "score2-op"
    return "score2-diabetes" if diabetes else "score2"


def calculate_cvd_risk(
    *,
    age: float,
    sex: str,
    sbp: float,
    total_chol: float,
    hdl: float,
    smoker: bool = False,
    model: str | None = None,
    risk_region: str = SWEDEN_RISK_REGION,
    diabetes: bool = False,
    age_at_diagnosis: float | None = None,
    hba1c: float | None = None,
    egfr: float | None = None,
    creatinine: float | None = None,
) -> dict[str, object]:
    """Score one person; returns the JSON document ``risk-calc --json`` prints."""
    key = model if model is not None else choose_model(age, diabetes)
    if key not in MODELS:
        raise InputError(f"model must be one of {', '.join(MODELS)}")
    common = {"age": age, "sex": sex, "smoker": smoker, "sbp": sbp}
    common |= {"total_chol": total_chol, "hdl": hdl, "risk_region": risk_region}
    extra: dict[str, object] = {}
    result: RiskResult
    if key == "score2-diabetes":
        egfr_value, extra = _egfr(egfr, creatinine, age, sex)
        if hba1c is None:
            raise InputError("score2-diabetes needs hba1c")
        # Without diabetes the model's diabetes terms are 0 (as RiskScorescvd and MDCalc
        # compute it); an age at diagnosis would then be silently ignored, so it is refused.
        if diabetes and age_at_diagnosis is None:
            raise InputError("score2-diabetes needs age_at_diagnosis for a person with diabetes")
        if not diabetes and age_at_diagnosis is not None:
            raise InputError("age_at_diagnosis only applies to a person with diabetes")
        result = score2_diabetes(
            **common, age_at_diagnosis=age_at_diagnosis if diabetes else float("nan"),
            hba1c=hba1c, egfr=egfr_value, diabetes=diabetes,
        )  # fmt: skip
    else:
        unused = {"age_at_diagnosis": age_at_diagnosis, "hba1c": hba1c}
        unused |= {"egfr": egfr, "creatinine": creatinine}
        given = [name for name, value in unused.items() if value is not None]
        if given:
            raise InputError(f"{', '.join(given)} only apply to score2-diabetes, not {key}")
        if key == "score2" and diabetes:
            raise InputError(
                "score2 is for people without diabetes (ESC 2021); use score2-diabetes "
                "(ages 40-69) or score2-op (70-89)"
            )
        scorer = score2 if key == "score2" else score2_op
        result = scorer(**common, diabetes=diabetes)
    return result.row(0) | extra


def _egfr(
    egfr: float | None, creatinine: float | None, age: float, sex: str
) -> tuple[float, dict[str, object]]:
    if (egfr is None) == (creatinine is None):
        raise InputError("score2-diabetes needs exactly one of egfr and creatinine")
    if egfr is not None:
        return egfr, {}
    value = float(ckd_epi_2021(creatinine, age, sex).egfr[0])
    return value, {
        "egfr": float(round_half_up(value)),
        "egfr_source": "CKD-EPI 2021 from creatinine",
    }

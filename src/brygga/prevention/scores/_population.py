"""Which cardiovascular score applies to whom, and scoring a whole population at once.

ESC 2021 prevention guidelines (Visseren et al., Eur Heart J 2021;42:3227) and ESC 2023
diabetes guidelines (Marx et al., Eur Heart J 2023;44:4043), for apparently healthy people:

* established atherosclerotic CVD: not scored (already at very high risk);
* type 2 diabetes, 40-69 years: SCORE2-Diabetes;
* no diabetes, 40-69 years: SCORE2;
* 70-89 years, with or without diabetes: SCORE2-OP (diabetes is one of its terms);
* under 40 or 90 and over: no validated score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from brygga.prevention.ranges import OnInvalid, columns
from brygga.prevention.scores._common import MODELS, SWEDEN_RISK_REGION, check_region
from brygga.prevention.scores._score2 import score2, score2_diabetes
from brygga.prevention.scores._score2_op import score2_op

MODEL_KEYS: tuple[str, ...] = ("score2", "score2-op", "score2-diabetes")
NOT_SCORED = -1


def assign_model(*, age: Any, diabetes: Any, established_cvd: Any) -> np.ndarray:
    """Index into ``MODEL_KEYS`` per person, or -1 where no primary-prevention score applies.

    ``diabetes`` means type 2 diabetes; ages are compared in completed years; missing ages
    and flags count as "no score" here (the score itself reports missing measurements).
    """
    cols = columns(age=age, diabetes=diabetes, cvd=established_cvd)
    years = np.floor(np.asarray(cols["age"], dtype=np.float64))
    dm = np.asarray(cols["diabetes"]) == 1  # NaN or 0 -> False; True == 1
    cvd = np.asarray(cols["cvd"]) == 1
    with np.errstate(invalid="ignore"):
        middle = (years >= 40) & (years <= 69)
        old = (years >= 70) & (years <= 89)
    choice = np.select(
        [cvd, middle & dm, middle, old],
        [NOT_SCORED, MODEL_KEYS.index("score2-diabetes"), MODEL_KEYS.index("score2"),
         MODEL_KEYS.index("score2-op")],
        NOT_SCORED,
    )  # fmt: skip
    return choice.astype(np.int8)


@dataclass(frozen=True)
class PopulationScores:
    """Per person: model index (-1 = not scored), risk, rounded percent, category, reasons.

    ``category`` indexes the categories of that person's model (``MODELS[key].categories``);
    ``invalid`` is the reason bit mask of ``ranges.Invalid`` for people a model applied to.
    """

    risk_region: str
    model: np.ndarray
    risk: np.ndarray
    risk_percent: np.ndarray
    category: np.ndarray
    invalid: np.ndarray

    def __len__(self) -> int:
        return len(self.model)

    def counts(self) -> dict[str, dict[str, int]]:
        """People per model and category (raw counts: for use inside the process only)."""
        out: dict[str, dict[str, int]] = {}
        for i, key in enumerate(MODEL_KEYS):
            rows = self.model == i
            cats = self.category[rows]
            labels = MODELS[key].categories
            out[key] = {label: int((cats == c).sum()) for c, label in enumerate(labels)}
            out[key]["invalid"] = int((cats < 0).sum())
        return out


def score_population(
    *,
    age: Any,
    sex: Any,
    smoker: Any,
    sbp: Any,
    total_chol: Any,
    hdl: Any,
    diabetes: Any,
    established_cvd: Any,
    age_at_diagnosis: Any = np.nan,
    hba1c: Any = np.nan,
    egfr: Any = np.nan,
    risk_region: str = SWEDEN_RISK_REGION,
) -> PopulationScores:
    """Score everyone with the model that applies to them; invalid rows get NaN, not errors."""
    region = check_region(risk_region)
    cols = columns(
        age=age, sex=sex, smoker=smoker, sbp=sbp, total_chol=total_chol, hdl=hdl,
        diabetes=diabetes, established_cvd=established_cvd,
        age_at_diagnosis=age_at_diagnosis, hba1c=hba1c, egfr=egfr,
    )  # fmt: skip
    model = assign_model(
        age=cols["age"], diabetes=cols["diabetes"], established_cvd=cols["established_cvd"]
    )
    n = len(model)
    risk, percent = np.full(n, np.nan), np.full(n, np.nan)
    category = np.full(n, NOT_SCORED, dtype=np.int8)
    invalid = np.zeros(n, dtype=np.uint32)
    nan: OnInvalid = "nan"
    for i, key in enumerate(MODEL_KEYS):
        rows = np.flatnonzero(model == i)
        if len(rows) == 0:
            continue
        sub = {k: v[rows] for k, v in cols.items()}
        common = {k: sub[k] for k in ("age", "sex", "smoker", "sbp", "total_chol", "hdl")}
        if key == "score2":
            res = score2(**common, risk_region=region, on_invalid=nan)
        elif key == "score2-op":
            res = score2_op(**common, diabetes=sub["diabetes"], risk_region=region, on_invalid=nan)
        else:
            res = score2_diabetes(
                **common, age_at_diagnosis=sub["age_at_diagnosis"], hba1c=sub["hba1c"],
                egfr=sub["egfr"], risk_region=region, on_invalid=nan,
            )  # fmt: skip
        risk[rows], percent[rows] = res.risk, res.risk_percent
        category[rows], invalid[rows] = res.category, res.invalid
    return PopulationScores(region, model, risk, percent, category, invalid)

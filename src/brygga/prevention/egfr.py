"""Estimated glomerular filtration rate by the CKD-EPI 2021 creatinine equation (race-free).

Inker LA et al. New creatinine- and cystatin C-based equations to estimate GFR without race.
N Engl J Med 2021;385:1737-49 (doi:10.1056/NEJMoa2102953):

    eGFR = 142 x min(Scr/k, 1)^a x max(Scr/k, 1)^-1.200 x 0.9938^age x 1.012 [if female]

with Scr in mg/dL, k = 0.7 (female) / 0.9 (male), a = -0.241 (female) / -0.302 (male).
Swedish laboratories report creatinine in µmol/L; 1 mg/dL = 88.4 µmol/L.
"""

from __future__ import annotations

__all__ = ["UMOL_PER_MG_DL", "EgfrResult", "ckd_epi_2021"]

from dataclasses import dataclass
from typing import Any

import numpy as np

from brygga.prevention.ranges import PLAUSIBLE, Invalid, OnInvalid, Validator, columns

UMOL_PER_MG_DL = 88.4

_KAPPA = {False: 0.9, True: 0.7}
_ALPHA = {False: -0.302, True: -0.241}
_FEMALE_FACTOR = 1.012


@dataclass(frozen=True)
class EgfrResult:
    """eGFR in mL/min/1.73m² (NaN where invalid) and a reason code per row (0 = valid)."""

    egfr: np.ndarray
    invalid: np.ndarray


def ckd_epi_2021(
    creatinine: Any, age: Any, sex: Any, *, on_invalid: OnInvalid = "raise"
) -> EgfrResult:
    """eGFR from serum creatinine (µmol/L), age (years, 18+) and sex ("male"/"female")."""
    cols = columns(creatinine=creatinine, age=age, sex=sex)
    check = Validator("CKD-EPI 2021", len(cols["age"]), on_invalid)
    female = check.female(cols["sex"])
    age_y = check.number("age", cols["age"], PLAUSIBLE["adult_age"], Invalid.AGE)
    scr = check.number(
        "creatinine", cols["creatinine"], PLAUSIBLE["creatinine"], Invalid.CREATININE
    )
    ok = check.valid()
    egfr = np.full(len(ok), np.nan)
    egfr[ok] = _equation(scr[ok] / UMOL_PER_MG_DL, age_y[ok], female[ok])
    return EgfrResult(egfr=egfr, invalid=check.reasons)


def _equation(scr_mg_dl: np.ndarray, age: np.ndarray, female: np.ndarray) -> np.ndarray:
    kappa = np.where(female, _KAPPA[True], _KAPPA[False])
    alpha = np.where(female, _ALPHA[True], _ALPHA[False])
    ratio = scr_mg_dl / kappa
    return (
        142.0
        * np.minimum(ratio, 1.0) ** alpha
        * np.maximum(ratio, 1.0) ** -1.200
        * 0.9938**age
        * np.where(female, _FEMALE_FACTOR, 1.0)
    )

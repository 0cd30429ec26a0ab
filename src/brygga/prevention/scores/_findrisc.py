"""FINDRISC, the Finnish Diabetes Risk Score (Lindström & Tuomilehto, Diabetes Care 2003;26:725).

Eight questions, 0-26 points, predicting the 10-year risk of type 2 diabetes.

Band edges follow the printed form, where "25-30 kg/m²" and "94-102 cm" include both ends:
BMI exactly 25 or 30 scores 1 (above 30 scores 3); a man's waist of exactly 94 or 102 cm
scores 3 (above 102 scores 4); a woman's waist of exactly 80 or 88 cm scores 3 (above 88
scores 4). Age is taken in completed years, so 44.9 is "under 45" and 64.9 is "55-64".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from brygga.prevention.ranges import PLAUSIBLE, Invalid, OnInvalid, Validator, columns

FAMILY_HISTORY: tuple[str, ...] = ("none", "second-degree", "first-degree")
FAMILY_HISTORY_POINTS = (0, 3, 5)
MAX_POINTS = 26

FINDRISC_CATEGORIES: tuple[str, ...] = ("low", "slightly-elevated", "moderate", "high", "very-high")
# The form's estimate of the 10-year risk of type 2 diabetes in each category.
FINDRISC_RISK: tuple[str, ...] = ("1 in 100", "1 in 25", "1 in 6", "1 in 3", "1 in 2")
_CATEGORY_EDGES = (7, 12, 15, 21)  # lowest score of each category after the first


@dataclass(frozen=True)
class FindriscResult:
    """Points (NaN where invalid), category index (-1 if invalid), reason bits, components."""

    points: np.ndarray
    category: np.ndarray
    invalid: np.ndarray
    components: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.points)

    def row(self, i: int = 0) -> dict[str, object]:
        ok = self.invalid[i] == 0
        cat = int(self.category[i])
        return {
            "model": "findrisc",
            "points": int(self.points[i]) if ok else None,
            "max_points": MAX_POINTS,
            "category": FINDRISC_CATEGORIES[cat] if ok else None,
            "risk_10y_type2_diabetes": FINDRISC_RISK[cat] if ok else None,
            "components": {k: int(v[i]) for k, v in self.components.items()} if ok else None,
            "reference": "Lindström & Tuomilehto, Diabetes Care 2003;26:725",
        }


def findrisc(
    *,
    age: Any,
    sex: Any,
    bmi: Any,
    waist: Any,
    physically_active: Any,
    daily_vegetables: Any,
    bp_medication: Any,
    high_glucose: Any,
    family_history: Any,
    on_invalid: OnInvalid = "raise",
) -> FindriscResult:
    """FINDRISC points and category.

    ``waist`` in cm at the navel; ``physically_active``: at least 30 minutes a day;
    ``daily_vegetables``: vegetables, fruit or berries every day; ``bp_medication``: ever on
    regular blood-pressure medication; ``high_glucose``: ever found high blood glucose;
    ``family_history``: "none", "second-degree" (grandparent, aunt, uncle, first cousin) or
    "first-degree" (parent, sibling, own child).
    """
    cols = columns(
        age=age, sex=sex, bmi=bmi, waist=waist, active=physically_active,
        veg=daily_vegetables, bpmed=bp_medication, glucose=high_glucose, family=family_history,
    )  # fmt: skip
    check = Validator("FINDRISC", len(cols["age"]), on_invalid)
    female = check.female(cols["sex"])
    age_y = np.floor(check.number("age", cols["age"], PLAUSIBLE["adult_age"], Invalid.AGE))
    bmi_v = check.number("bmi", cols["bmi"], PLAUSIBLE["bmi"], Invalid.BMI)
    waist_v = check.number("waist", cols["waist"], PLAUSIBLE["waist"], Invalid.WAIST)
    active = check.yes_no("physically_active", cols["active"], Invalid.PHYSICALLY_ACTIVE)
    veg = check.yes_no("daily_vegetables", cols["veg"], Invalid.DAILY_VEGETABLES)
    bpmed = check.yes_no("bp_medication", cols["bpmed"], Invalid.BP_MEDICATION)
    glucose = check.yes_no("high_glucose", cols["glucose"], Invalid.HIGH_GLUCOSE)
    family = _family_points(check, cols["family"])

    # Comparisons on NaN are False, so invalid rows get some points; they are masked below.
    waist_mid, waist_high = np.where(female, 80.0, 94.0), np.where(female, 88.0, 102.0)
    components = {
        "age": np.select([age_y < 45, age_y < 55, age_y < 65], [0, 2, 3], 4),
        "bmi": np.select([bmi_v < 25, bmi_v <= 30], [0, 1], 3),
        "waist": np.select([waist_v < waist_mid, waist_v <= waist_high], [0, 3], 4),
        "physical_activity": np.where(active, 0, 2),
        "vegetables": np.where(veg, 0, 1),
        "bp_medication": np.where(bpmed, 2, 0),
        "high_glucose": np.where(glucose, 5, 0),
        "family_history": family,
    }
    components = {k: v.astype(np.int8) for k, v in components.items()}
    total = sum(c.astype(np.int16) for c in components.values())
    valid = check.valid()
    points = np.where(valid, total, np.nan)
    category = np.searchsorted(_CATEGORY_EDGES, total, side="right").astype(np.int8)
    return FindriscResult(
        points=points,
        category=np.where(valid, category, np.int8(-1)).astype(np.int8),
        invalid=check.reasons,
        components=components,
    )


def _family_points(check: Validator, values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values)
    points = np.zeros(len(arr), dtype=np.int8)
    known = np.zeros(len(arr), dtype=bool)
    for label, p in zip(FAMILY_HISTORY, FAMILY_HISTORY_POINTS, strict=True):
        hit = np.asarray(arr == label, dtype=bool)
        points[hit] = p
        known |= hit
    check.mark(
        ~known,
        Invalid.FAMILY_HISTORY,
        "family_history must be one of " + ", ".join(FAMILY_HISTORY),
    )
    return points

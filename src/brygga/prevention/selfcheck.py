"""The resident's self-check: FINDRISC from the eight questions of the published form.

A pure function over the answers a person gives on the page (``/egenkontroll``): age, sex,
height and weight (for BMI), waist, and six yes/no or choice questions. The points come from
the one FINDRISC implementation (``prevention.scores.findrisc``, Lindström & Tuomilehto,
Diabetes Care 2003;26:725); this module validates the form with field messages and gives the
result in the words of the published form: the category and the estimated 10-year risk of
type 2 diabetes ("1 in 25"). Nothing is stored: the answers stay in the request.
"""

from __future__ import annotations

__all__ = ["Answers", "SelfCheck", "check"]

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from brygga.forms import FormError, validate
from brygga.prevention.scores import FINDRISC_CATEGORIES, findrisc

# The published form's 10-year risk per category, as "1 in N".
ONE_IN = (100, 25, 6, 3, 2)


class Answers(BaseModel):
    """The form's answers (strings from a web form are coerced; blanks are "required")."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    age: int = Field(ge=18, le=120)
    sex: Literal["female", "male"]
    height_cm: int = Field(ge=100, le=250)
    weight_kg: int = Field(ge=25, le=400)
    waist_cm: int = Field(ge=40, le=250)
    active: Literal["yes", "no"]
    vegetables: Literal["yes", "no"]
    bp_medication: Literal["yes", "no"]
    high_glucose: Literal["yes", "no"]
    family: Literal["none", "second-degree", "first-degree"]

    @property
    def bmi(self) -> float:
        return self.weight_kg / (self.height_cm / 100) ** 2

    @model_validator(mode="after")
    def _plausible(self) -> Answers:
        if not 10 <= self.bmi <= 80:
            raise FormError({"weight_kg": "height and weight do not fit together; check both"})
        return self


@dataclass(frozen=True)
class SelfCheck:
    points: int
    max_points: int
    category: str  # low | slightly-elevated | moderate | high | very-high
    one_in: int  # the 10-year risk of type 2 diabetes is about 1 in this many
    bmi: float
    components: dict[str, int]


def check(data: dict[str, Any]) -> SelfCheck:
    """FINDRISC for one person's answers; a ``FormError`` names every field that is wrong."""
    a = validate(Answers, {k: v for k, v in data.items() if v not in ("", None)})
    result = findrisc(
        age=a.age, sex=a.sex, bmi=a.bmi, waist=a.waist_cm,
        physically_active=a.active == "yes", daily_vegetables=a.vegetables == "yes",
        bp_medication=a.bp_medication == "yes", high_glucose=a.high_glucose == "yes",
        family_history=a.family,
    )  # fmt: skip
    row = result.row(0)
    category = int(result.category[0])
    return SelfCheck(
        points=int(row["points"]),  # type: ignore[call-overload]
        max_points=int(row["max_points"]),  # type: ignore[call-overload]
        category=FINDRISC_CATEGORIES[category],
        one_in=ONE_IN[category],
        bmi=round(a.bmi, 1),
        components=dict(row["components"]),  # type: ignore[call-overload]
    )

"""The self-check (prevention/selfcheck.py) against the published FINDRISC points table
(Lindström & Tuomilehto, Diabetes Care 2003;26:725)."""

from __future__ import annotations

import pytest

from brygga.forms import FormError
from brygga.prevention.selfcheck import check

LOW = {"age": "30", "sex": "male", "height_cm": "180", "weight_kg": "70", "waist_cm": "80",
       "active": "yes", "vegetables": "yes", "bp_medication": "no", "high_glucose": "no",
       "family": "none"}  # fmt: skip


def points(**changes: str) -> dict[str, int]:
    return check(LOW | changes).components


def test_zero_points_is_low_risk():
    r = check(LOW)
    assert (r.points, r.max_points, r.category, r.one_in) == (0, 26, "low", 100)


@pytest.mark.parametrize(
    ("age", "expected"), [("44", 0), ("45", 2), ("54", 2), ("55", 3), ("64", 3), ("65", 4)]
)
def test_age_points(age, expected):
    assert points(age=age)["age"] == expected


@pytest.mark.parametrize(("weight", "expected"), [("80", 0), ("81", 1), ("97", 1), ("98", 3)])
def test_bmi_points(weight, expected):  # 180 cm: 81 kg is BMI 25.0, 97 kg 29.9, 98 kg 30.2
    assert points(weight_kg=weight)["bmi"] == expected


@pytest.mark.parametrize(("sex", "waist", "expected"), [
    ("male", "93", 0), ("male", "94", 3), ("male", "102", 3), ("male", "103", 4),
    ("female", "79", 0), ("female", "80", 3), ("female", "88", 3), ("female", "89", 4),
])  # fmt: skip
def test_waist_points(sex, waist, expected):
    assert points(sex=sex, waist_cm=waist)["waist"] == expected


def test_yes_no_and_family_points():
    assert points(active="no")["physical_activity"] == 2
    assert points(vegetables="no")["vegetables"] == 1
    assert points(bp_medication="yes")["bp_medication"] == 2
    assert points(high_glucose="yes")["high_glucose"] == 5
    assert points(family="second-degree")["family_history"] == 3
    assert points(family="first-degree")["family_history"] == 5


@pytest.mark.parametrize(("answers", "total", "category", "one_in"), [
    ({"age": "50", "weight_kg": "81"}, 3, "low", 100),
    ({"age": "50", "active": "no", "vegetables": "no", "bp_medication": "yes"}, 7, "slightly-elevated", 25),
    ({"age": "60", "high_glucose": "yes", "waist_cm": "95", "vegetables": "no"}, 12, "moderate", 6),
    ({"age": "60", "high_glucose": "yes", "waist_cm": "103", "family": "second-degree"}, 15, "high", 3),
    ({"age": "66", "high_glucose": "yes", "waist_cm": "103", "family": "first-degree",
      "weight_kg": "100", "active": "no"}, 23, "very-high", 2),
])  # fmt: skip
def test_categories(answers, total, category, one_in):
    r = check(LOW | answers)
    assert (r.points, r.category, r.one_in) == (total, category, one_in)


def test_form_errors_name_every_field():
    with pytest.raises(FormError) as e:
        check({"age": "", "sex": "other", "height_cm": "180", "weight_kg": "9999"})
    assert set(e.value.fields) >= {"age", "sex", "weight_kg", "waist_cm", "active", "family"}
    assert e.value.fields["age"] == "is required"


def test_height_and_weight_must_fit():
    with pytest.raises(FormError) as e:
        check(LOW | {"height_cm": "250", "weight_kg": "30"})
    assert "weight_kg" in e.value.fields

"""One population definition: feasibility, prevention's inputs and the calibration report count
the same people on a day, on the Parquet files and on the optimized database alike."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from brygga.cohort.criteria import parse_criteria
from brygga.cohort.feasibility import eligible_persons
from brygga.cohort.population import completed_years, ymd
from brygga.prevention.inputs import extract_inputs
from brygga.synth.calibration import calibration_report

DAYS = [date(2026, 6, 30), date(2021, 2, 28)]


@pytest.mark.parametrize("day", DAYS)
def test_prevention_counts_the_people_feasibility_counts(small_region, day: date) -> None:
    region = small_region.region
    everyone = parse_criteria({"name": "everyone", "index_date": day.isoformat()})
    counted = np.array(sorted(eligible_persons(everyone, region)), dtype=np.int64)
    inputs = extract_inputs(region, index_date=day)
    assert len(counted) > 10_000
    np.testing.assert_array_equal(np.sort(inputs["person_id"]), counted)
    # ... and gives them the same age: 40-75 by criteria is 40-75 in the inputs.
    aged = parse_criteria(
        {
            "name": "40-75",
            "index_date": day.isoformat(),
            "demographics": {"age": {"min": 40, "max": 75}},
        }
    )
    in_band = (inputs["age"] >= 40) & (inputs["age"] <= 75)
    assert sorted(inputs["person_id"][in_band]) == sorted(eligible_persons(aged, region))


def test_the_calibration_report_counts_the_same_residents(small_region) -> None:
    region = small_region.region
    end = region.manifest["period"]["end"]
    everyone = parse_criteria({"name": "everyone", "index_date": end})
    total = next(r for r in calibration_report(region) if r.measure == "residents (total)")
    assert total.value == len(eligible_persons(everyone, region))


def test_completed_years_count_a_birthday_from_its_day() -> None:
    born = np.array([ymd(date(1960, 6, 30)), ymd(date(1960, 7, 1)), ymd(date(1964, 2, 29))])
    assert completed_years(ymd(date(2020, 6, 30)), born).tolist() == [60, 59, 56]
    assert completed_years(ymd(date(2024, 2, 28)), born[2]) == 59

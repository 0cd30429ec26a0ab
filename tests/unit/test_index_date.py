"""A question without an index date, asked after the region's records end, is asked on the
records' last day, and the answer says so (issue 21: the README's first example counted 0)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from brygga import clock
from brygga.cohort.criteria import parse_criteria
from brygga.cohort.feasibility import eligible_persons, feasibility
from brygga.demo import EXAMPLE

CRITERIA = parse_criteria(EXAMPLE)  # no index date of its own


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def test_after_the_records_end_the_index_date_is_their_last_day(small_region) -> None:
    region = small_region.region
    end = date.fromisoformat(region.manifest["period"]["end"])
    with clock.frozen(_at(end + timedelta(days=160))):
        result = feasibility(CRITERIA, region, raw=True)
        persons = eligible_persons(CRITERIA, region)
    assert result.index_date == end
    assert result.count["value"] > 0
    assert len(persons) == result.count["value"]
    (note,) = result.notes
    assert f"index date {end.isoformat()}" in note and "before today" in note
    assert result.as_dict()["notes"] == [note]


def test_inside_the_period_today_is_used_without_a_note(small_region) -> None:
    region = small_region.region
    end = date.fromisoformat(region.manifest["period"]["end"])
    day = end - timedelta(days=100)
    with clock.frozen(_at(day)):
        result = feasibility(CRITERIA, region, raw=True)
    assert (result.index_date, result.notes) == (day, [])


def test_an_index_date_asked_for_is_kept(small_region) -> None:
    region = small_region.region
    end = date.fromisoformat(region.manifest["period"]["end"])
    later = end + timedelta(days=30)
    with clock.frozen(_at(end + timedelta(days=160))):
        given = feasibility(CRITERIA, region, raw=True, index_date=later)
        stated = feasibility(parse_criteria(EXAMPLE | {"index_date": later}), region, raw=True)
    for result in (given, stated):
        assert (result.index_date, result.notes) == (later, [])
        assert result.count["value"] == 0  # nobody is under observation after the records end


def test_an_imported_region_s_period_comes_from_its_observation_periods(omop_small) -> None:
    stated = omop_small.manifest["period"]
    manifest = {k: v for k, v in omop_small.manifest.items() if k != "period"}
    region = type(omop_small)(omop_small.path, manifest)
    start, end = region.period
    assert start <= date.fromisoformat(stated["start"]) + timedelta(days=366)
    assert end == date.fromisoformat(stated["end"])
    assert region.records_date(end + timedelta(days=5)) == end

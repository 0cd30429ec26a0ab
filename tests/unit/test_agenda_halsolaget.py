"""Hälsoläget: disclosed counts, rates from disclosed counts, direct age standardisation."""

from __future__ import annotations

import pytest

from brygga.agenda.halsolaget import CONDITIONS, halsolaget, standardised
from brygga.privacy.disclosure import RoundingPolicy
from tests.unit.test_privacy_outputs import small_counts


def c(value):
    return {"value": value, "display": "<8" if value is None else str(value)}


def test_direct_standardisation_weights_band_rates_by_the_standard():
    # Band rates 10 % and 20 %; the standard population is 3/4 young: 0.75*0.1 + 0.25*0.2.
    assert standardised([c(10), c(40)], [c(100), c(200)], [0.75, 0.25]) == pytest.approx(0.125)
    # A municipality with many old people has a higher crude rate, the same standardised one.
    assert standardised([c(1000), c(4000)], [c(10000), c(20000)], [0.75, 0.25]) == pytest.approx(
        0.125
    )
    assert standardised([c(None), c(40)], [c(100), c(200)], [0.75, 0.25]) is None  # hidden
    assert standardised([c(None), c(40)], [c(100), c(200)], [0.0, 1.0]) == pytest.approx(0.2)
    assert standardised([c(0), c(40)], [c(0), c(200)], [0.5, 0.5]) is None  # empty band


@pytest.mark.slow
def test_every_count_is_disclosed_and_the_groups_add_up(small_region):
    region = small_region.region
    doc = halsolaget(region, RoundingPolicy(8, 5))
    assert not small_counts(doc)
    prevalence = doc["prevalence"]
    assert [x["id"] for x in prevalence["conditions"]] == [cid for cid, *_ in CONDITIONS]
    assert sum(prevalence["weights"]) == pytest.approx(1.0, abs=1e-3)
    for condition in prevalence["conditions"]:
        overall = condition["overall"]
        assert overall["population"] == prevalence["population"]
        if overall["rate"] is not None:
            assert 0 <= overall["rate"] <= 100
        for row in condition["by_municipality"]:
            assert "standardised" in row
    high = doc["score2"]["high_or_above"]
    assert high["overall"]["count"]["value"] is not None
    assert {cat["id"] for cat in doc["score2"]["categories"]} == {
        "low-to-moderate", "high", "very-high"}  # fmt: skip

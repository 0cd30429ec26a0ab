"""The deployment's disclosure policy: configuration, rounding, the Cell Key Method."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brygga.errors import InputError, NotFoundError, PermissionDenied
from brygga.privacy.cellkey import PTable, cell_key, cell_key_of, key_units, new_record_keys
from brygga.privacy.disclosure import (
    CellKeyPolicy,
    DisclosureSettings,
    RawPolicy,
    RoundingPolicy,
    configured_policy,
    load_settings,
    policy_for,
)

PTABLE = PTable.build(2, 1.0)


def test_default_is_opensafely_rounding(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("METHOD", "THRESHOLD", "ROUNDING"):
        monkeypatch.delenv(f"BRYGGA_DISCLOSURE_{name}", raising=False)
    policy = policy_for(synthetic=False)
    assert policy == RoundingPolicy(8, 5)
    assert [policy.apply(n)["display"] for n in (0, 1, 7, 8, 12, 13)] == [
        "0",
        "<8",
        "<8",
        "10",
        "10",
        "15",
    ]


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRYGGA_DISCLOSURE_THRESHOLD", "11")
    monkeypatch.setenv("BRYGGA_DISCLOSURE_ROUNDING", "10")
    assert configured_policy() == RoundingPolicy(11, 10)
    assert configured_policy().apply(10)["display"] == "<11"
    monkeypatch.setenv("BRYGGA_DISCLOSURE_METHOD", "cell-key")
    policy = configured_policy()
    assert isinstance(policy, CellKeyPolicy) and policy.threshold == 11
    assert policy.needs_record_keys


def test_bad_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRYGGA_DISCLOSURE_METHOD", "shuffle")
    with pytest.raises(InputError, match="BRYGGA_DISCLOSURE_METHOD"):
        load_settings()
    monkeypatch.setenv("BRYGGA_DISCLOSURE_METHOD", "cell-key")
    monkeypatch.setenv("BRYGGA_DISCLOSURE_THRESHOLD", "2")
    with pytest.raises(InputError, match="smaller than threshold"):
        load_settings()


def test_raw_refused_on_non_synthetic_regions() -> None:
    assert isinstance(policy_for(synthetic=True, raw=True), RawPolicy)
    with pytest.raises(PermissionDenied, match="only allowed for synthetic regions"):
        policy_for(synthetic=False, raw=True, settings=DisclosureSettings(method="cell-key"))


def test_ptable_is_unbiased_with_the_asked_variance() -> None:
    table = PTable.build(3, 1.5)
    assert table.perturbations == (-3, -2, -1, 0, 1, 2, 3)
    assert sum(table.probabilities) == pytest.approx(1.0)
    assert sum(d * p for d, p in zip(table.perturbations, table.probabilities, strict=True)) == (
        pytest.approx(0.0, abs=1e-12)
    )
    assert table.variance == pytest.approx(1.5, rel=1e-6)
    # A cell key is the uniform draw: the perturbations come out with their probabilities.
    draws = np.array([table.perturbation(u) for u in np.linspace(0, 1, 20_000, endpoint=False)])
    for d, p in zip(table.perturbations, table.probabilities, strict=True):
        assert (draws == d).mean() == pytest.approx(p, abs=1e-3)
    with pytest.raises(InputError, match="variance"):
        PTable.build(2, 4.0)


def test_ptable_from_csv(tmp_path: Path) -> None:
    good = tmp_path / "p.csv"
    good.write_text("perturbation,probability\n-1,0.25\n0,0.5\n1,0.25\n")
    assert PTable.from_csv(good).perturbations == (-1, 0, 1)
    biased = tmp_path / "b.csv"
    biased.write_text("perturbation,probability\n0,0.5\n1,0.5\n")
    with pytest.raises(InputError, match="mean 0"):
        PTable.from_csv(biased)
    bad = tmp_path / "x.csv"
    bad.write_text("perturbation,probability\n0,half\n")
    with pytest.raises(InputError, match="line 2"):
        PTable.from_csv(bad)
    with pytest.raises(NotFoundError):
        PTable.from_csv(tmp_path / "missing.csv")


def test_cell_keys_do_not_depend_on_order() -> None:
    keys = new_record_keys(1000, np.random.default_rng(5))
    assert ((keys >= 0) & (keys < 1)).all()
    forward = cell_key_of(keys)
    backward = cell_key_of(keys[::-1])
    assert forward == backward
    assert 0 <= forward < 1
    assert forward == cell_key(int(key_units(keys).sum()))
    # Fresh keys come from the operating system's entropy: two draws differ.
    assert not np.array_equal(new_record_keys(5), new_record_keys(5))


def test_same_cell_same_noise_whoever_asks() -> None:
    policy = CellKeyPolicy(PTABLE)
    key = cell_key_of(np.random.default_rng(1).random(40))
    assert policy.apply(40, key) == policy.apply(40, key)
    values = {
        policy.apply(40, cell_key_of(np.random.default_rng(s).random(40)))["value"]
        for s in range(50)
    }
    assert values <= set(range(38, 43)) and len(values) > 2  # noise, within ±2


@settings(max_examples=300, deadline=None)
@given(count=st.integers(0, 60), key=st.floats(0, 1, exclude_max=True))
def test_cell_key_never_shows_a_small_count(count: int, key: float) -> None:
    policy = CellKeyPolicy(PTABLE)
    shown = policy.apply(count, key)
    assert shown["value"] is None or shown["value"] == 0 or shown["value"] >= 8
    if count == 0:
        assert shown["value"] == 0
    if shown["value"]:
        low, high = policy.interval(shown)
        assert low <= count <= high
    # Without a cell key (a caller that has none) the rounding rule applies.
    assert policy.apply(count) == RoundingPolicy(8, 5).apply(count)


@settings(max_examples=300, deadline=None)
@given(count=st.integers(0, 500), rounding=st.integers(1, 10), threshold=st.integers(1, 12))
def test_rounding_interval_contains_the_truth(count: int, rounding: int, threshold: int) -> None:
    policy = RoundingPolicy(threshold, rounding)
    shown = policy.apply(count)
    low, high = policy.interval(shown)
    assert low <= count <= (high if high is not None else count)
    assert shown["value"] is None or shown["value"] == 0 or shown["value"] >= threshold

"""The minimal disclosure policy for counts."""

from __future__ import annotations

import pytest

from brygga.errors import PermissionDenied
from brygga.privacy.disclosure import MinimalPolicy, RawPolicy, policy_for


@pytest.mark.parametrize(
    ("count", "value", "display"),
    [
        (0, 0, "0"),
        (1, None, "<8"),
        (7, None, "<8"),
        (8, 10, "10"),
        (10, 10, "10"),
        (12, 10, "10"),
        (13, 15, "15"),
        (1234, 1235, "1235"),
        (1232, 1230, "1230"),
    ],
)
def test_minimal_policy(count, value, display):
    assert MinimalPolicy().apply(count) == {"value": value, "display": display}


def test_rounding_to_ten_rounds_halves_up():
    assert MinimalPolicy(threshold=11, rounding=10).apply(15) == {"value": 20, "display": "20"}


def test_raw_only_for_synthetic_regions():
    assert isinstance(policy_for(synthetic=False), MinimalPolicy)
    assert isinstance(policy_for(synthetic=True, raw=True), RawPolicy)
    assert RawPolicy().apply(3) == {"value": 3, "display": "3"}
    with pytest.raises(PermissionDenied, match="only allowed for synthetic regions"):
        policy_for(synthetic=False, raw=True)


def test_negative_counts_are_a_bug():
    with pytest.raises(ValueError, match="negative"):
        MinimalPolicy().apply(-1)

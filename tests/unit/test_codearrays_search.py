"""The vectorized searches of the code arrays (cohort/codearrays.py) against NumPy's own.

The entry rules search each (code, person)'s rows with ``_bound`` and ``_any_between`` and
pack the people found with ``packed_sorted``; the spec tests check the answers on hand-made
regions, here every edge of the searches is checked on random sorted keys: empty ranges,
ranges of one row, repeated keys, wanted keys before, between and after a range's rows.
"""

from __future__ import annotations

import numpy as np
import pytest

from brygga.cohort.codearrays import _any_between, _bound, packed_sorted


def _queries(rng: np.random.Generator, keys: np.ndarray, n: int):
    lo = rng.integers(0, len(keys) + 1, n)
    hi = np.minimum(lo + rng.integers(0, 40, n), len(keys))  # many empty and short ranges
    wanted = rng.integers(int(keys[0]) - 2, int(keys[-1]) + 3, n)
    return lo, hi, wanted


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("right", [False, True])
def test_bound_is_searchsorted_within_each_range(seed, right):
    rng = np.random.default_rng(seed)
    keys = np.sort(rng.integers(0, 300, 2_000))  # repeats: both sides differ
    lo, hi, wanted = _queries(rng, keys, 3_000)
    side = "right" if right else "left"
    expected = [
        a + np.searchsorted(keys[a:b], w, side) for a, b, w in zip(lo, hi, wanted, strict=True)
    ]
    assert _bound(keys, lo, hi, wanted, right=right).tolist() == expected


@pytest.mark.parametrize("seed", range(5))
def test_any_between_finds_a_key_in_the_window(seed):
    rng = np.random.default_rng(seed)
    keys = np.sort(rng.integers(0, 300, 2_000))
    lo, hi, low = _queries(rng, keys, 3_000)
    high = low + rng.integers(-1, 6, len(low))  # empty windows too (high < low)
    expected = [
        bool(((keys[a:b] >= x) & (keys[a:b] <= y)).any())
        for a, b, x, y in zip(lo, hi, low, high, strict=True)
    ]
    found = _any_between(keys, lo, hi, low, high)
    assert found.tolist() == expected
    assert 0 < sum(expected) < len(expected)  # both answers occur


@pytest.mark.parametrize("size", [1, 7, 8, 9, 1_000, 1_001])
def test_packed_sorted_is_packbits(size):
    rng = np.random.default_rng(size)
    for count in (0, 1, size // 3, size):
        people = np.sort(rng.choice(size, count, replace=False)).astype(np.int64)
        mask = np.zeros(size, dtype=bool)
        mask[people] = True
        packed = packed_sorted(people, size)
        assert packed.dtype == np.uint8
        assert packed.tobytes() == np.packbits(mask).tobytes()

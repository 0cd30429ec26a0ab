"""The Cell Key Method's parts: record keys, cell keys and the perturbation table (p-table).

Every person in a region has a random *record key* in [0, 1) (table ``person_key``, written by
the synthetic generator and the OMOP import). A cell's key is the sum of its people's record
keys modulo 1, so the same set of people always has the same cell key, whoever asks and however
the cell was reached. The cell key picks a perturbation from the p-table: a zero-mean
distribution over -D .. D; the cell key is its uniform draw.

Sums are exact: each record key is taken as a 32-bit integer (``floor(key * 2**32)``) and the
integers are added modulo 2**32, so engines that add in different orders agree to the bit.
"""

from __future__ import annotations

__all__ = [
    "SCALE",
    "FeasibilityKeys",
    "PTable",
    "cell_key",
    "cell_key_of",
    "key_units",
    "new_record_keys",
    "region_units",
    "write_record_keys",
]

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from brygga.errors import InputError, NotFoundError

SCALE = 2**32


def new_record_keys(n: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """``n`` record keys in [0, 1); from the operating system's entropy unless ``rng`` given."""
    rng = rng if rng is not None else np.random.default_rng()
    return rng.random(n)


def key_units(record_keys: np.ndarray) -> np.ndarray:
    """Record keys as integers in [0, 2**32), the form they are summed in."""
    return np.floor(np.asarray(record_keys, dtype=np.float64) * SCALE).astype(np.int64)


def cell_key(units_sum: int) -> float:
    """The cell key in [0, 1) of a sum of key units."""
    return (int(units_sum) % SCALE) / SCALE


def cell_key_of(record_keys: Iterable[float]) -> float:
    return cell_key(int(key_units(np.fromiter(record_keys, dtype=np.float64)).sum()))


@dataclass(frozen=True)
class PTable:
    """Perturbations and their probabilities; a cell key in [0, 1) picks one by inversion."""

    perturbations: tuple[int, ...]
    probabilities: tuple[float, ...]

    def __post_init__(self) -> None:
        cumulative = np.cumsum(self.probabilities)
        object.__setattr__(self, "_upper", cumulative / cumulative[-1])

    @property
    def max_perturbation(self) -> int:
        return max(abs(d) for d in self.perturbations)

    @property
    def variance(self) -> float:
        p = np.array(self.probabilities)
        d = np.array(self.perturbations, dtype=float)
        return float((p * d**2).sum() - ((p * d).sum()) ** 2)

    def perturbation(self, key: float) -> int:
        if not 0.0 <= key < 1.0:
            raise ValueError("a cell key lies in [0, 1)")
        index = int(np.searchsorted(self._upper, key, side="right"))  # type: ignore[attr-defined]
        return self.perturbations[min(index, len(self.perturbations) - 1)]

    @classmethod
    def build(cls, max_perturbation: int, variance: float) -> PTable:
        """A symmetric, zero-mean p-table over -D .. D with the given variance.

        Probabilities follow a discretised normal shape whose width is found by bisection;
        the variance must lie below D**2 (all mass at +-D).
        """
        d = np.arange(-max_perturbation, max_perturbation + 1, dtype=float)
        if not 0 < variance < max_perturbation**2:
            raise InputError(
                f"cell key method: the variance must lie between 0 and {max_perturbation**2} "
                f"(the maximum perturbation squared), not {variance}"
            )

        def probabilities(width: float) -> np.ndarray:
            p = np.exp(-(d**2) / (2 * width**2))
            return p / p.sum()

        low, high = 1e-3, 1e3
        for _ in range(200):
            mid = math.sqrt(low * high)
            if float((probabilities(mid) * d**2).sum()) < variance:
                low = mid
            else:
                high = mid
        p = probabilities(math.sqrt(low * high))
        return cls(tuple(int(x) for x in d), tuple(float(x) for x in p))

    @classmethod
    def from_csv(cls, path: Path) -> PTable:
        """A p-table file: a header ``perturbation,probability``, one row per perturbation."""
        if not path.is_file():
            raise NotFoundError(f"p-table file {str(path)!r} does not exist")
        rows: list[tuple[int, float]] = []
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames != ["perturbation", "probability"]:
                raise InputError(f"{path}: line 1: the header must be perturbation,probability")
            for line, row in enumerate(reader, start=2):
                try:
                    rows.append((int(row["perturbation"]), float(row["probability"])))
                except (TypeError, ValueError):
                    raise InputError(f"{path}: line {line}: not an integer and a number") from None
                if rows[-1][1] < 0:
                    raise InputError(f"{path}: line {line}: a probability cannot be negative")
        if not rows:
            raise InputError(f"{path}: the p-table has no rows")
        if abs(sum(p for _, p in rows) - 1.0) > 1e-6:
            raise InputError(f"{path}: the probabilities must add up to 1")
        if abs(sum(d * p for d, p in rows)) > 1e-6:
            raise InputError(f"{path}: the perturbations must have mean 0 (unbiased counts)")
        rows.sort()
        return cls(tuple(d for d, _ in rows), tuple(p for _, p in rows))


# --- Keys of the cells of a feasibility query ------------------------------------------------


@dataclass(frozen=True)
class FeasibilityKeys:
    """Key-unit sums for each attrition step and each (sex, age band, municipality) cell,
    summed by the cohort engine where the data is (``Engine.keys``)."""

    steps: list[int]
    cells: dict[tuple[str, int, str | None], int]


def region_units(region: Any, person_ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """Key units of the given people, looked up in the region's ``person_key`` table.

    For outputs computed in Python (prevention): sum the units of a cell's people and pass
    ``cell_key(sum)`` to ``policy.apply``.
    """
    table = region.read_table("person_key")
    ids = table.column("person_id").to_numpy()
    units = key_units(table.column("record_key").to_numpy())
    order = np.argsort(ids)
    ids, units = ids[order], units[order]
    wanted = np.asarray(person_ids, dtype=np.int64)
    at = np.clip(np.searchsorted(ids, wanted), 0, max(len(ids) - 1, 0))
    if len(ids) == 0 or not np.array_equal(ids[at], wanted):
        raise InputError(f"region {region.name!r}: some people have no record key")
    return units[at]


def write_record_keys(con: Any, writer: Any) -> int:
    """Draw a fresh record key (OS entropy) for every person written so far by ``writer`` (a
    RegionWriter) and write the ``person_key`` table. ``con`` is a DuckDB connection."""
    import pyarrow as pa

    glob = "'" + str(writer.tmp / "person" / "*.parquet").replace("'", "''") + "'"
    ids = con.sql(f"SELECT person_id FROM read_parquet({glob})").to_arrow_table()
    ids = ids.column("person_id").to_numpy()
    writer.write(
        "person_key", pa.table({"person_id": ids, "record_key": new_record_keys(len(ids))})
    )
    return len(ids)

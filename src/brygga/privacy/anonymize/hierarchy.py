"""Generalization hierarchies: ARX's CSV files and automatic ones, as integer code maps.

A hierarchy for a column is built for the values that occur in the data: level 0 is the value
itself, the last level is usually '*'. ``codes[l][v]`` is the code of the label that data value
``v`` (the column's dictionary code) has at level ``l``; ``up_map(a, b)`` maps level-``a`` codes to
level-``b`` codes, which lets a frequency set be rolled up without going back to the records.
That requires each level to be a tree over the next, which is checked here.
"""

from __future__ import annotations

__all__ = [
    "TOP",
    "Hierarchy",
    "Unmapped",
    "arx_label_rows",
    "auto_label_rows",
    "find_hierarchy_file",
    "from_label_rows",
    "read_arx_file",
]

import csv
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from brygga.errors import InputError, NotFoundError
from brygga.privacy.anonymize.config import (
    DateHierarchy,
    FlatHierarchy,
    HierarchySpec,
    Icd10Hierarchy,
    IntervalHierarchy,
    MunicipalityHierarchy,
    PrefixHierarchy,
)
from brygga.records.codes import VOCABULARIES

TOP = "*"


class Unmapped(Exception):
    """A data value the hierarchy has no row for (the caller adds the CSV line)."""

    def __init__(self, value_index: int, why: str) -> None:
        super().__init__(why)
        self.value_index = value_index
        self.why = why


@dataclass
class Hierarchy:
    column: str
    source: str
    labels: list[list[str]]
    codes: list[np.ndarray]
    _up: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def height(self) -> int:
        return len(self.labels)

    def cardinality(self, level: int) -> int:
        return len(self.labels[level])

    def up_map(self, a: int, b: int) -> np.ndarray:
        """Level-``a`` code -> level-``b`` code (a <= b)."""
        key = (a, b)
        if key not in self._up:
            m = np.zeros(self.cardinality(a), dtype=np.int32)
            m[self.codes[a]] = self.codes[b]
            self._up[key] = m
        return self._up[key]


def from_label_rows(column: str, source: str, rows: list[list[str]]) -> Hierarchy:
    """Build from one row of labels per data value (row[0] is the value)."""
    height = len(rows[0])
    labels: list[list[str]] = []
    codes: list[np.ndarray] = []
    for level in range(height):
        index: dict[str, int] = {}
        codes.append(
            np.fromiter((index.setdefault(r[level], len(index)) for r in rows), np.int32, len(rows))
        )
        labels.append(list(index))
    h = Hierarchy(column, source, labels, codes)
    for level in range(1, height):
        up = h.up_map(level - 1, level)
        bad = np.flatnonzero(up[codes[level - 1]] != codes[level])
        if len(bad):
            v = int(bad[0])
            label = labels[level - 1][codes[level - 1][v]]
            raise InputError(
                f"{source}: the level-{level - 1} label {label!r} generalizes to more than one"
                f" level-{level} label (e.g. {labels[level][codes[level][v]]!r}); each level"
                " must group the labels of the level below"
            )
    return h


# --- ARX's CSV format --------------------------------------------------------------------


def read_arx_file(path: Path, separator: str) -> dict[str, list[str]]:
    """value -> its labels, from a file with one row per value and one column per level."""
    if not path.is_file():
        raise NotFoundError(f"hierarchy file {path} does not exist")
    rows: dict[str, list[str]] = {}
    first_line: dict[str, int] = {}
    width = 0
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter=separator)
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if not width:
                width = len(row)
                if width < 2:
                    raise InputError(
                        f"{path} line {line}: a hierarchy needs at least two columns (the value"
                        f" and one generalization) separated by {separator!r}"
                    )
            elif len(row) != width:
                raise InputError(
                    f"{path} line {line}: {len(row)} levels, but the first row has {width};"
                    " every row must have the same number of levels"
                )
            if row[0] in rows:
                raise InputError(
                    f"{path} line {line}: value {row[0]!r} already has a row"
                    f" (line {first_line[row[0]]})"
                )
            rows[row[0]] = row
            first_line[row[0]] = line
    if not rows:
        raise InputError(f"{path}: the hierarchy file is empty")
    return rows


def arx_label_rows(values: list[str], table: dict[str, list[str]], source: str) -> list[list[str]]:
    out = []
    for i, v in enumerate(values):
        row = table.get(v)
        if row is None:
            raise Unmapped(i, f"is not in the hierarchy {source}")
        out.append(row)
    return out


# --- Automatic hierarchies -----------------------------------------------------------------


def _interval_rows(spec: IntervalHierarchy, values: list[str]) -> list[list[str]]:
    numbers: list[float | None] = []
    for i, v in enumerate(values):
        if v.strip() == "":
            numbers.append(None)
            continue
        try:
            x = float(v)
        except ValueError:
            raise Unmapped(i, "is not a number (interval hierarchy)") from None
        if not math.isfinite(x):
            raise Unmapped(i, "is not a finite number (interval hierarchy)")
        numbers.append(x)
    integral = all(
        float(x).is_integer() for x in [spec.start, *spec.widths, *(n for n in numbers if n)]
    )

    def label(x: float, w: float) -> str:
        lo = spec.start + math.floor((x - spec.start) / w) * w
        if integral:
            return f"{int(lo)}-{int(lo + w - 1)}"
        return f"[{lo:g}, {lo + w:g})"

    rows = []
    for v, x in zip(values, numbers, strict=True):
        if x is None:
            rows.append([v, *([""] * len(spec.widths)), TOP])
        else:
            rows.append([v, *(label(x, w) for w in spec.widths), TOP])
    return rows


def _date_rows(spec: DateHierarchy, values: list[str]) -> list[list[str]]:
    rows = []
    for i, v in enumerate(values):
        if v.strip() == "":
            rows.append([v, *([""] * len(spec.levels)), TOP])
            continue
        try:
            d = datetime.strptime(v.strip(), spec.format)
        except ValueError:
            raise Unmapped(i, f"is not a date in the format {spec.format!r}") from None
        decade = d.year // 10 * 10
        by_level = {
            "month": f"{d.year:04d}-{d.month:02d}",
            "year": f"{d.year:04d}",
            "decade": f"{decade:04d}-{decade + 9:04d}",
        }
        rows.append([v, *(by_level[x] for x in spec.levels), TOP])
    return rows


def _icd10_rows(values: list[str]) -> list[list[str]]:
    pattern = VOCABULARIES["ICD10"].pattern
    rows = []
    for i, v in enumerate(values):
        code = v.strip().upper().replace(".", "")
        if code == "":
            rows.append([v, "", "", TOP])
        elif not pattern.fullmatch(code):
            raise Unmapped(i, "is not an ICD-10 code (e.g. E119 or E11.9)")
        else:
            rows.append([v, code[:3], code[0], TOP])
    return rows


_KOMMUNKOD = re.compile(r"[0-9]{4}")


def _municipality_rows(values: list[str]) -> list[list[str]]:
    rows = []
    for i, v in enumerate(values):
        code = v.strip()
        if code == "":
            rows.append([v, "", TOP])
        elif not _KOMMUNKOD.fullmatch(code):
            raise Unmapped(i, "is not a 4-digit SCB kommunkod")
        else:
            rows.append([v, code[:2], TOP])
    return rows


def _prefix_rows(spec: PrefixHierarchy, values: list[str]) -> list[list[str]]:
    return [[v, *(v[:n] for n in spec.lengths), TOP] for v in values]


def auto_label_rows(spec: HierarchySpec, values: list[str]) -> list[list[str]]:
    builders: dict[type, Callable[[list[str]], list[list[str]]]] = {
        IntervalHierarchy: lambda vs: _interval_rows(spec, vs),  # type: ignore[arg-type]
        DateHierarchy: lambda vs: _date_rows(spec, vs),  # type: ignore[arg-type]
        Icd10Hierarchy: _icd10_rows,
        MunicipalityHierarchy: _municipality_rows,
        PrefixHierarchy: lambda vs: _prefix_rows(spec, vs),  # type: ignore[arg-type]
        FlatHierarchy: lambda vs: [[v, TOP] for v in vs],
    }
    return builders[type(spec)](values)


# --- Finding the file ---------------------------------------------------------------------


def find_hierarchy_file(column: str, spec: str | None, base: Path, field_path: str) -> Path:
    """A configured path is relative to ``base``; no path means look for the column's file."""
    if spec is not None:
        path = Path(spec)
        return path if path.is_absolute() else base / path
    candidates = [base / f"{column}.csv", *sorted(base.glob(f"*hierarchy_{column}.csv"))]
    for c in candidates:
        if c.is_file():
            return c
    raise NotFoundError(
        f"{field_path}: no hierarchy given and none found in {base}"
        f" (looked for {column}.csv and *hierarchy_{column}.csv)"
    )

"""Plausible input ranges and the row-wise validation every risk score shares.

Each score checks its inputs here, vectorized. There are two modes:

* ``on_invalid="raise"`` (the default, for one person or a clean table): the first problem
  raises an ``InputError`` that names the field and the accepted range.
* ``on_invalid="nan"`` (for population runs): invalid rows get NaN and a reason code, so one
  bad record does not stop a run over two million people. The reason code is a bit mask of
  ``Invalid`` flags, one bit per field, so a row with two bad fields says so.

Messages name fields, ranges and row positions, never values: a value could be health data.
"""

from __future__ import annotations

__all__ = [
    "ON_INVALID_MODES",
    "PLAUSIBLE",
    "SEXES",
    "Invalid",
    "OnInvalid",
    "Range",
    "Validator",
    "columns",
    "describe_invalid",
]

import enum
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from brygga.errors import InputError

OnInvalid = Literal["raise", "nan"]
ON_INVALID_MODES: tuple[str, ...] = ("raise", "nan")


class Invalid(enum.IntFlag):
    """Why a row could not be scored (bits; 0 means valid)."""

    AGE = enum.auto()
    SEX = enum.auto()
    SMOKER = enum.auto()
    DIABETES = enum.auto()
    SBP = enum.auto()
    TOTAL_CHOL = enum.auto()
    HDL = enum.auto()
    AGE_AT_DIAGNOSIS = enum.auto()
    HBA1C = enum.auto()
    EGFR = enum.auto()
    CREATININE = enum.auto()
    BMI = enum.auto()
    WAIST = enum.auto()
    PHYSICALLY_ACTIVE = enum.auto()
    DAILY_VEGETABLES = enum.auto()
    BP_MEDICATION = enum.auto()
    HIGH_GLUCOSE = enum.auto()
    FAMILY_HISTORY = enum.auto()


def describe_invalid(code: int) -> list[str]:
    """The field names behind a reason code, e.g. ``["sbp", "hdl"]``; ``[]`` if valid."""
    return [flag.name.lower() for flag in Invalid if flag.name and code & flag]


@dataclass(frozen=True)
class Range:
    """An inclusive range ``low..high``. Ages are checked in completed years (see docs)."""

    low: float
    high: float
    unit: str

    def text(self) -> str:
        return f"between {self.low:g} and {self.high:g} {self.unit}"


# One place for what counts as plausible. Wide on purpose: they catch unit mix-ups
# (cholesterol in mg/dL, HbA1c in %, creatinine in mg/dL) and typing errors, not disease.
PLAUSIBLE: dict[str, Range] = {
    "sbp": Range(60, 300, "mmHg"),
    "total_chol": Range(1, 20, "mmol/L"),
    "hdl": Range(0.1, 5, "mmol/L"),
    "hba1c": Range(15, 200, "mmol/mol"),
    "egfr": Range(5, 250, "mL/min/1.73m²"),
    "creatinine": Range(10, 3000, "µmol/L"),
    "age_at_diagnosis": Range(10, 120, "years"),
    "bmi": Range(10, 80, "kg/m²"),
    "waist": Range(40, 250, "cm"),
    "adult_age": Range(18, 120, "years"),
}

SEXES = ("male", "female")


def columns(**inputs: Any) -> dict[str, np.ndarray]:
    """Turn scalars and 1-D array-likes into 1-D arrays of one common length."""
    arrays = {name: np.atleast_1d(np.asarray(value)) for name, value in inputs.items()}
    for name, arr in arrays.items():
        if arr.ndim != 1:
            raise InputError(f"{name} must be a scalar or a 1-dimensional array")
    try:
        shaped = np.broadcast_arrays(*arrays.values())
    except ValueError:
        lengths = ", ".join(f"{k}={len(v)}" for k, v in arrays.items())
        raise InputError(f"inputs must have the same length ({lengths})") from None
    return dict(zip(arrays, shaped, strict=True))


class Validator:
    """Checks columns row-wise; raises at once or accumulates reason codes per row."""

    def __init__(self, model: str, n: int, on_invalid: str) -> None:
        if on_invalid not in ON_INVALID_MODES:
            raise InputError(f"on_invalid must be one of {', '.join(ON_INVALID_MODES)}")
        self.model = model
        self.n = n
        self.raise_at_once = on_invalid == "raise"
        self.reasons = np.zeros(n, dtype=np.uint32)

    def mark(self, bad: np.ndarray, flag: Invalid, message: str) -> None:
        """Record rows where ``bad`` holds; in raise mode, raise with ``message``."""
        if not bad.any():
            return
        if self.raise_at_once:
            raise InputError(f"{message} for {self.model}{self._where(bad)}")
        self.reasons[bad] |= np.uint32(flag)

    def number(
        self, name: str, values: np.ndarray, rng: Range, flag: Invalid, *, years: bool = False
    ) -> np.ndarray:
        """Float64 values; NaN or out of ``rng`` is invalid. ``years`` compares whole years."""
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"{name} must be numeric for {self.model}") from None
        missing = np.isnan(arr)
        self.mark(missing, flag, f"{name} is missing")
        # Comparisons with NaN are False, so missing rows are not flagged twice.
        checked = np.floor(arr) if years else arr
        outside = (checked < rng.low) | (checked > rng.high)
        self.mark(outside, flag, f"{name} must be {rng.text()}")
        return arr

    def yes_no(self, name: str, values: np.ndarray, flag: Invalid) -> np.ndarray:
        """Booleans, or numbers that are exactly 0 or 1."""
        arr = np.asarray(values)
        if arr.dtype == np.bool_:
            return arr
        try:
            num = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise InputError(f"{name} must be true/false (or 1/0) for {self.model}") from None
        self.mark(~((num == 0) | (num == 1)), flag, f"{name} must be true/false (or 1/0)")
        return num == 1

    def female(self, values: np.ndarray) -> np.ndarray:
        """True for "female", False for "male"; anything else is invalid."""
        arr = np.asarray(values)
        female = arr == "female"
        self.mark(~(female | (arr == "male")), Invalid.SEX, 'sex must be "male" or "female"')
        return np.asarray(female, dtype=bool)

    def valid(self) -> np.ndarray:
        return self.reasons == 0

    def _where(self, bad: np.ndarray) -> str:
        if self.n == 1:
            return ""
        rows = np.flatnonzero(bad)
        return f" ({len(rows)} of {self.n} rows; first at row {rows[0]})"

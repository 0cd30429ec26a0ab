"""Risk-score inputs from a region's records, for everyone at once.

For each person alive and under observation on the index date (default: the region's end
date), ``extract_inputs`` finds the most recent systolic blood pressure, total and HDL
cholesterol, HbA1c, creatinine (-> eGFR by CKD-EPI 2021, age at the test) and smoking status
inside configurable look-back windows, type 1 / type 2 diabetes and the age at the first
recorded type 2 diagnosis, and established cardiovascular disease (any time before the index
date). Which score applies to whom follows the ESC (see ``assign``, docs/prevention.md).

A few queries (``inputs_sql``: one filtered scan each, written once in Ibis, run on the
region's DuckDB or Spark engine), then numpy: no Python loop per person. Missing inputs are
reported per person (a bit mask of ``Missing``) and in aggregate; nothing is imputed unless
``impute=True`` is asked for, and then the result says which fields were imputed for whom.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from brygga.cohort.engines import IbisEngine, query_engine
from brygga.cohort.population import completed_years, ymd
from brygga.config import get_settings
from brygga.errors import InputError
from brygga.prevention import inputs_sql as Q
from brygga.prevention.egfr import ckd_epi_2021
from brygga.prevention.inputs_sql import (
    ESTABLISHED_CVD_ICD10,
    ESTABLISHED_CVD_KVA,
    TYPE1_DIABETES_ICD10,
    TYPE2_DIABETES_ICD10,
)
from brygga.prevention.scores import MODEL_KEYS, assign_model
from brygga.records.store import Region

SMOKING_STATUS = ("never", "ex", "current")


class Missing(enum.IntFlag):
    """Inputs the applicable model needs but the records do not have (bits; 0 = complete)."""

    SBP = enum.auto()
    TOTAL_CHOL = enum.auto()
    HDL = enum.auto()
    SMOKING = enum.auto()
    HBA1C = enum.auto()
    EGFR = enum.auto()  # no creatinine in the window (or not usable for eGFR)


MISSING_NAMES = {flag: flag.name.lower() for flag in Missing if flag.name}
_NEEDS = {
    "score2": Missing.SBP | Missing.TOTAL_CHOL | Missing.HDL | Missing.SMOKING,
    "score2-op": Missing.SBP | Missing.TOTAL_CHOL | Missing.HDL | Missing.SMOKING,
    "score2-diabetes": Missing.SBP | Missing.TOTAL_CHOL | Missing.HDL | Missing.SMOKING
    | Missing.HBA1C | Missing.EGFR,
}  # fmt: skip


class Exclusion(enum.IntEnum):
    """Why no primary-prevention score applies (0: one does)."""

    NONE = 0
    ESTABLISHED_CVD = 1
    TYPE1_DIABETES = 2  # 40-69 with type 1 diabetes: SCORE2-Diabetes is for type 2 only
    AGE = 3  # under 40 or 90 and over: no validated score


EXCLUSION_LABELS = {
    Exclusion.ESTABLISHED_CVD: "established CVD",
    Exclusion.TYPE1_DIABETES: "type 1 diabetes (40-69)",
    Exclusion.AGE: "age outside 40-89",
}


@dataclass(frozen=True)
class Lookback:
    """How far back (days before the index date) a value still counts as current."""

    sbp: int = 3 * 365
    lipids: int = 5 * 365
    hba1c: int = 2 * 365
    creatinine: int = 2 * 365
    smoking: int = 5 * 365

    def __post_init__(self) -> None:
        for name, days in self.__dict__.items():
            if not isinstance(days, int) or days < 1:
                raise InputError(f"look-back {name} must be a whole number of days >= 1")

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class RiskInputs:
    """Per person (arrays of equal length, in ``person_id`` order) at ``index_date``.

    ``model`` indexes ``MODEL_KEYS`` (-1: not scored, see ``exclusion``); ``missing`` and
    ``imputed`` are bit masks of ``Missing`` for the inputs that model needs.
    """

    index_date: date
    lookback: Lookback
    imputation: str | None
    columns: dict[str, np.ndarray]
    model: np.ndarray
    exclusion: np.ndarray
    missing: np.ndarray
    imputed: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return len(self.model)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    @property
    def complete(self) -> np.ndarray:
        """A model applies and every input it needs is present (or imputed)."""
        return (self.model >= 0) & (self.missing == 0)

    def missing_fields(self, row: int) -> list[str]:
        """Names of the missing inputs of one row (e.g. ``["sbp", "hdl"]``)."""
        return [name for flag, name in MISSING_NAMES.items() if int(self.missing[row]) & flag]

    def missing_counts(self) -> dict[str, int]:
        """People a model applies to, and how many lack each input (raw: disclose before use)."""
        scored = self.model >= 0
        out = {"people": int(scored.sum()), "any": int((scored & (self.missing > 0)).sum())}
        for flag, name in MISSING_NAMES.items():
            out[name] = int((scored & ((self.missing & flag) > 0)).sum())
        return out

    def to_arrow(self) -> pa.Table:
        cols = {k: pa.array(v) for k, v in self.columns.items()}
        cols["model"] = pa.array(
            [MODEL_KEYS[m] if m >= 0 else None for m in self.model.tolist()], pa.string()
        )
        cols["missing"] = pa.array(self.missing)
        cols["imputed"] = pa.array(self.imputed)
        return pa.table(cols)


def default_index_date(region: Region) -> date:
    end = (region.manifest.get("period") or {}).get("end")
    if not end:
        raise InputError(
            f"region {region.name!r} has no period end in its manifest; give an index date"
        )
    return date.fromisoformat(str(end))


def has_population_table(con: Any) -> bool:
    """Whether ``con`` (from ``Region.duckdb``) reads an optimized database's ``population``."""
    rows = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE view_name = 'population' AND NOT internal"
    ).fetchall()
    return rows[0][0] > 0


def input_engine(region: Region, engine: IbisEngine | str | None = None) -> IbisEngine:
    """The engine that reads a region's inputs: given, named (duckdb, spark), or the
    configured default (``BRYGGA_ENGINE``)."""
    if isinstance(engine, IbisEngine):
        return engine
    return query_engine(engine or get_settings().engine, region)


def extract_inputs(
    region: Region,
    *,
    index_date: date | None = None,
    lookback: Lookback | None = None,
    impute: bool = False,
    engine: IbisEngine | str | None = None,
    timings: dict[str, float] | None = None,
) -> RiskInputs:
    """Inputs for everyone alive and under observation on ``index_date``, read through
    ``engine`` (see ``input_engine``; the same answers on DuckDB and Spark).

    ``timings``, if given, receives the seconds of each query by name and of the rest
    ("numpy"), for benchmarks."""
    engine = input_engine(region, engine)
    idx = index_date or default_index_date(region)
    lookback = lookback or Lookback()
    windows = lookback.as_dict()
    timings = {} if timings is None else timings
    started = time.perf_counter()

    def query(name: str, expr: Any) -> pa.Table:
        t0 = time.perf_counter()
        table = engine.to_arrow(expr)
        timings[name] = time.perf_counter() - t0
        return table

    pop = query("population", Q.population_query(engine, idx))
    if not _ascending(pop.column("person_id").to_numpy()):  # the query sorts; numpy relies on it
        pop = pop.sort_by("person_id")
    person_id = pop.column("person_id").to_numpy()
    n = len(person_id)
    born = _floats(pop, "born")  # YYYYMMDD: completed years = floor(difference / 10,000)
    female, known_sex = _flags(pop, "female"), _flags(pop, "known_sex")
    cols: dict[str, np.ndarray] = {
        "person_id": person_id,
        "age": completed_years(ymd(idx), born),
        "sex": np.where(known_sex, np.where(female, "female", "male"), "unknown"),
        "municipality_code": _strings(pop.column("municipality_code")),
        "deprivation_quintile": _nullable_int(pop.column("deprivation_quintile"), n),
        "care_site_id": _nullable_int(pop.column("care_site_id"), n),
    }

    ids = id_range(region, "measurement", "measurement_id")
    labs = {
        name: query(name, Q.lab_query(engine, key, idx, windows[window], ids))
        for key, name, window in Q.LABS
    }
    creatinine_age = np.full(n, np.nan)  # eGFR takes the age on the day of the test
    for name, table in labs.items():
        pos, rows = _place(person_id, table)
        cols[name] = np.full(n, np.nan)
        cols[name][pos] = _floats(table, "v")[rows]
        cols[f"{name}_date"] = np.full(n, np.datetime64("NaT"), "datetime64[D]")
        cols[f"{name}_date"][pos] = _days(table, "d")[rows]
        if name == "creatinine":
            tested = _floats(table, "d_ymd")[rows]
            creatinine_age[pos] = completed_years(tested, born[pos])
    cols["egfr"] = _egfr(cols["creatinine"], creatinine_age, cols["sex"])

    ids = id_range(region, "observation", "observation_id")
    smoking = query("smoking", Q.smoking_query(engine, idx, windows["smoking"], ids))
    status = np.full(n, -1, np.int8)  # -1 unknown, else index into SMOKING_STATUS
    pos, rows = _place(person_id, smoking)
    status[pos] = smoking.column("smoking").to_numpy()[rows]
    cols["smoking_status"] = status

    history = query("history", Q.history_query(engine, idx))
    t1_n, t2_n, cvd = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, bool)
    t2_age = np.full(n, np.nan)
    pos, rows = _place(person_id, history)
    t1_n[pos] = history.column("t1_n").to_numpy()[rows]
    t2_n[pos] = history.column("t2_n").to_numpy()[rows]
    cvd[pos] = _flags(history, "cvd")[rows]
    t2_age[pos] = completed_years(_floats(history, "t2_first")[rows], born[pos])
    # Mixed coding happens; the type recorded more often wins (type 1 on a tie).
    type1 = (t1_n > 0) & (t1_n >= t2_n)
    type2 = (t2_n > 0) & ~type1
    cols["type1_diabetes"], cols["type2_diabetes"] = type1, type2
    cols["age_at_diagnosis"] = np.where(type2, t2_age, np.nan)
    cols["established_cvd"] = cvd
    inputs = assign(idx, lookback, cols, impute=impute)
    timings["numpy"] = time.perf_counter() - started - sum(timings.values())
    return inputs


def id_range(region: Region, table: str, column: str) -> Q.IdRange | None:
    """The smallest and largest ``column`` of ``table`` from its Parquet files' statistics
    (their footers: no scan; every engine reads these files or a database built from them),
    or None when a file has none. It lets the latest-value queries use a BIGINT key."""
    path = region.table_path(table)
    if path is None:
        return None
    lo: int | None = None
    hi: int | None = None
    for part in sorted(path.glob("*.parquet")) if path.is_dir() else [path]:
        meta = pq.read_metadata(part)
        names = [meta.schema.column(i).name for i in range(meta.num_columns)]
        if column not in names:
            return None
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            stats = group.column(names.index(column)).statistics
            if group.num_rows == 0 or (stats is not None and stats.null_count == group.num_rows):
                continue
            if stats is None or not stats.has_min_max:
                return None
            lo = int(stats.min) if lo is None else min(lo, int(stats.min))
            hi = int(stats.max) if hi is None else max(hi, int(stats.max))
    return None if lo is None or hi is None else (lo, hi)


def _place(person_id: np.ndarray, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``person_id`` (sorted) of the rows of ``table`` whose person is in it (the
    population: not, e.g., the dead), and those rows. The queries return their rows sorted by
    person: a binary search of sorted keys stays in cache (several times faster than of random
    keys); anything else is sorted here first."""
    ids = table.column("person_id").to_numpy()
    if len(person_id) == 0 or len(ids) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows = np.arange(len(ids)) if _ascending(ids) else np.argsort(ids)
    pos = np.minimum(np.searchsorted(person_id, ids[rows]), len(person_id) - 1)
    keep = person_id[pos] == ids[rows]
    return pos[keep], rows[keep]


def _ascending(ids: np.ndarray) -> bool:
    return bool((ids[1:] > ids[:-1]).all())


def _strings(column: pa.ChunkedArray) -> np.ndarray:
    """An object array of str (None for null), by way of the few distinct values: making one
    Python string per row took seconds for millions of rows."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    values = np.append(encoded.dictionary.to_numpy(zero_copy_only=False), None)
    return values[encoded.indices.fill_null(len(values) - 1).to_numpy()]


def _floats(table: pa.Table, name: str) -> np.ndarray:
    """As float64, NaN for null."""
    return table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)


def _days(table: pa.Table, name: str) -> np.ndarray:
    """A date column as datetime64[D] (NaT for null)."""
    return table.column(name).to_numpy(zero_copy_only=False).astype("datetime64[D]")


def _flags(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False).astype(bool)


def _nullable_int(column: pa.ChunkedArray, n: int) -> np.ndarray:
    """Integers with -1 for null (municipality-free columns such as deprivation, care site)."""
    if n == 0:
        return np.zeros(0, np.int64)
    return column.fill_null(-1).to_numpy().astype(np.int64)


def _egfr(creatinine: np.ndarray, age: np.ndarray, sex: np.ndarray) -> np.ndarray:
    egfr = np.full(len(creatinine), np.nan)
    ok = np.isfinite(creatinine) & np.isfinite(age) & (age >= 18) & (sex != "unknown")
    if ok.any():
        egfr[ok] = ckd_epi_2021(creatinine[ok], age[ok], sex[ok], on_invalid="nan").egfr
    return egfr


def assign(
    index_date: date, lookback: Lookback, cols: dict[str, np.ndarray], *, impute: bool = False
) -> RiskInputs:
    """Which model applies to whom (ESC), what is missing, and optional imputation."""
    age = cols["age"]
    any_diabetes = cols["type1_diabetes"] | cols["type2_diabetes"]
    years = np.floor(age)
    middle = (years >= 40) & (years <= 69)
    t1_middle = cols["type1_diabetes"] & middle
    # SCORE2-OP's diabetes term covers either type; SCORE2-Diabetes is for type 2 only.
    model = assign_model(
        age=age,
        diabetes=np.where(middle, cols["type2_diabetes"], any_diabetes),
        established_cvd=cols["established_cvd"] | t1_middle,
    )
    model = np.where(cols["sex"] == "unknown", -1, model).astype(np.int8)
    exclusion = np.select(
        [cols["established_cvd"], t1_middle, model < 0],
        [Exclusion.ESTABLISHED_CVD, Exclusion.TYPE1_DIABETES, Exclusion.AGE],
        Exclusion.NONE,
    ).astype(np.int8)
    cols["diabetes"] = any_diabetes
    missing = _missing(cols, model)
    imputed = np.zeros(len(model), np.uint16)
    if impute:
        imputed = _impute(cols, model, missing)
        missing = _missing(cols, model)
    cols["smoker"] = np.where(cols["smoking_status"] >= 0, cols["smoking_status"] == 2, np.nan)
    return RiskInputs(
        index_date=index_date,
        lookback=lookback,
        imputation=IMPUTATION if impute else None,
        columns=cols,
        model=model,
        exclusion=exclusion,
        missing=missing,
        imputed=imputed,
    )


def _present(cols: dict[str, np.ndarray]) -> dict[Missing, np.ndarray]:
    return {
        Missing.SBP: np.isfinite(cols["sbp"]),
        Missing.TOTAL_CHOL: np.isfinite(cols["total_chol"]),
        Missing.HDL: np.isfinite(cols["hdl"]),
        Missing.SMOKING: cols["smoking_status"] >= 0,
        Missing.HBA1C: np.isfinite(cols["hba1c"]),
        Missing.EGFR: np.isfinite(cols["egfr"]),
    }


def _missing(cols: dict[str, np.ndarray], model: np.ndarray) -> np.ndarray:
    needs = np.zeros(len(model), np.uint16)
    for i, key in enumerate(MODEL_KEYS):
        needs[model == i] = int(_NEEDS[key])
    missing = np.zeros(len(model), np.uint16)
    for flag, present in _present(cols).items():
        missing |= np.where(~present & ((needs & flag) > 0), int(flag), 0).astype(np.uint16)
    return missing


IMPUTATION = (
    "missing SBP, cholesterol, HbA1c and eGFR replaced by the median of people of the same "
    "sex, 10-year age band and diabetes status who have the value; missing smoking status "
    "counted as non-smoker"
)
_IMPUTED_COLUMNS = {
    Missing.SBP: "sbp",
    Missing.TOTAL_CHOL: "total_chol",
    Missing.HDL: "hdl",
    Missing.HBA1C: "hba1c",
    Missing.EGFR: "egfr",
}


def _impute(cols: dict[str, np.ndarray], model: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Fill missing inputs in place (documented in ``IMPUTATION``); returns the imputed mask."""
    imputed = missing.copy()
    band = np.clip(np.floor(np.nan_to_num(cols["age"]) / 10), 0, 12).astype(np.int64)
    group = (band * 2 + (cols["sex"] == "female")) * 2 + cols["diabetes"].astype(np.int64)
    scored = model >= 0
    for flag, name in _IMPUTED_COLUMNS.items():
        need = (missing & flag) > 0
        if not need.any():
            continue
        values = cols[name].copy()
        for g in np.unique(group[need]):  # at most 52 groups: a loop over groups, not people
            donors = values[(group == g) & scored & np.isfinite(values)]
            if len(donors) == 0:
                donors = values[scored & np.isfinite(values)]
            if len(donors):
                values[need & (group == g)] = np.median(donors)
        cols[name] = values
    need_smoking = (missing & Missing.SMOKING) > 0
    cols["smoking_status"] = np.where(need_smoking, 0, cols["smoking_status"]).astype(np.int8)
    still = _missing(cols, model)
    return (imputed & ~still).astype(np.uint16)


def index_minus_years(index_date: date, years: int) -> date:
    """The same calendar day ``years`` earlier (28 February for 29 February)."""
    try:
        return index_date.replace(year=index_date.year - years)
    except ValueError:
        return index_date.replace(year=index_date.year - years, day=28)


__all__ = [
    "ESTABLISHED_CVD_ICD10",
    "ESTABLISHED_CVD_KVA",
    "EXCLUSION_LABELS",
    "IMPUTATION",
    "MISSING_NAMES",
    "SMOKING_STATUS",
    "TYPE1_DIABETES_ICD10",
    "TYPE2_DIABETES_ICD10",
    "Exclusion",
    "Lookback",
    "Missing",
    "RiskInputs",
    "default_index_date",
    "extract_inputs",
    "has_population_table",
    "index_minus_years",
    "input_engine",
]

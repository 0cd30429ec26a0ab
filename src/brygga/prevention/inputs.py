"""Risk-score inputs from a region's records, for everyone at once.

For each person alive and under observation on the index date (default: the region's end
date), ``extract_inputs`` finds the most recent systolic blood pressure, total and HDL
cholesterol, HbA1c, creatinine (-> eGFR by CKD-EPI 2021, age at the test) and smoking status
inside configurable look-back windows, type 1 / type 2 diabetes and the age at the first
recorded type 2 diagnosis, and established cardiovascular disease (any time before the index
date). Which score applies to whom follows the ESC (see ``assign``, docs/prevention.md).

One DuckDB query per table, then numpy: no Python loop per person. Missing inputs are
reported per person (a bit mask of ``Missing``) and in aggregate; nothing is imputed unless
``impute=True`` is asked for, and then the result says which fields were imputed for whom.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa

from brygga.errors import InputError
from brygga.prevention.egfr import ckd_epi_2021
from brygga.prevention.scores import MODEL_KEYS, assign_model
from brygga.records import codes as K
from brygga.records.store import Region

# Established atherosclerotic CVD (ESC 2021: prior ACS, angina, coronary revascularisation,
# stroke or TIA, peripheral artery disease, aortic aneurysm). ICD-10 prefixes, without dots.
ESTABLISHED_CVD_ICD10: tuple[str, ...] = (
    "I20", "I21", "I22", "I23", "I24", "I25",  # ischaemic heart disease, incl. MI
    "I61", "I63", "I64",  # stroke: haemorrhagic, ischaemic, unspecified
    "G45",  # transient ischaemic attack
    "I65", "I66",  # occlusion or stenosis of precerebral / cerebral arteries
    "I70", "I71", "I73", "I74",  # atherosclerosis, aortic aneurysm, PAD, arterial embolism
)  # fmt: skip
# Coronary revascularisation (KVÅ): FNG percutaneous coronary intervention, FNC/FND/FNE CABG.
ESTABLISHED_CVD_KVA: tuple[str, ...] = ("FNG", "FNC", "FND", "FNE")
TYPE2_DIABETES_ICD10: tuple[str, ...] = ("E11", "E14")  # E14 unspecified: type 2 in practice
TYPE1_DIABETES_ICD10: tuple[str, ...] = ("E10",)

_LAB_CODE = {key: K.LABS[key].code for key in ("SBP", "TC", "HDL", "HbA1c", "creatinine")}
_SMOKING_CODE = {key: K.OBSERVATIONS[key].code for key in ("never_smoker", "ex_smoker", "smoker")}
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


def _prefix_sql(column: str, prefixes: tuple[str, ...]) -> str:
    return "(" + " OR ".join(f"starts_with({column}, '{p}')" for p in prefixes) + ")"


def _population_sql() -> str:
    return """
        SELECT p.person_id,
               p.gender_concept_id = 8532 AS female,
               p.gender_concept_id IN (8507, 8532) AS known_sex,
               make_date(p.year_of_birth, coalesce(p.month_of_birth, 1),
                         coalesce(p.day_of_birth, 1)) AS birth,
               p.municipality_code, p.deprivation_quintile, p.care_site_id
        FROM person p
        WHERE p.person_id IN (
                SELECT person_id FROM observation_period
                WHERE observation_period_start_date <= $idx
                  AND observation_period_end_date >= $idx)
          AND p.person_id NOT IN (SELECT person_id FROM death WHERE death_date <= $idx)
        ORDER BY p.person_id
    """


def _labs_sql(lookback: Lookback) -> str:
    windows = {
        "SBP": lookback.sbp,
        "TC": lookback.lipids,
        "HDL": lookback.lipids,
        "HbA1c": lookback.hba1c,
        "creatinine": lookback.creatinine,
    }
    values = ", ".join(f"('{_LAB_CODE[k]}', {int(d)})" for k, d in windows.items())
    pivots = ",\n".join(
        f"max(v) FILTER (WHERE code = '{_LAB_CODE[k]}') AS {name}, "
        f"max(d) FILTER (WHERE code = '{_LAB_CODE[k]}') AS {name}_date"
        for k, name in (
            ("SBP", "sbp"),
            ("TC", "total_chol"),
            ("HDL", "hdl"),
            ("HbA1c", "hba1c"),
            ("creatinine", "creatinine"),
        )
    )
    # max_by over (date, id): the latest value, ties on a date broken the same way every run.
    return f"""
        WITH w(code, days) AS (VALUES {values}),
        latest AS (
            SELECT m.person_id, m.measurement_source_value AS code,
                   max_by(m.value_as_number, (m.measurement_date, m.measurement_id)) AS v,
                   max(m.measurement_date) AS d
            FROM measurement m JOIN w ON m.measurement_source_value = w.code
            WHERE m.measurement_date <= $idx
              AND m.measurement_date > $idx - w.days::INTEGER
              AND m.value_as_number IS NOT NULL
            GROUP BY ALL)
        SELECT person_id, {pivots} FROM latest GROUP BY person_id
    """


def _smoking_sql(lookback: Lookback) -> str:
    codes = ", ".join(f"'{c}'" for c in _SMOKING_CODE.values())
    status = " ".join(
        f"WHEN '{_SMOKING_CODE[k]}' THEN {i}"
        for i, k in enumerate(("never_smoker", "ex_smoker", "smoker"))
    )
    return f"""
        SELECT person_id,
               max_by(CASE observation_source_value {status} END,
                      (observation_date, observation_id)) AS smoking
        FROM observation
        WHERE observation_source_value IN ({codes})
          AND observation_date <= $idx AND observation_date > $idx - {int(lookback.smoking)}
        GROUP BY person_id
    """


def _history_sql() -> str:
    t2 = _prefix_sql("condition_source_value", TYPE2_DIABETES_ICD10)
    t1 = _prefix_sql("condition_source_value", TYPE1_DIABETES_ICD10)
    cvd = _prefix_sql("condition_source_value", ESTABLISHED_CVD_ICD10)
    proc = _prefix_sql("procedure_source_value", ESTABLISHED_CVD_KVA)
    return f"""
        WITH c AS (
            SELECT person_id,
                   min(condition_start_date) FILTER (WHERE {t2}) AS t2_first,
                   count(*) FILTER (WHERE {t2}) AS t2_n,
                   count(*) FILTER (WHERE {t1}) AS t1_n,
                   bool_or({cvd}) AS cvd
            FROM condition_occurrence
            WHERE condition_start_date <= $idx AND ({t2} OR {t1} OR {cvd})
            GROUP BY person_id),
        p AS (
            SELECT DISTINCT person_id, true AS revasc FROM procedure_occurrence
            WHERE procedure_date <= $idx AND {proc})
        SELECT coalesce(c.person_id, p.person_id) AS person_id, c.t2_first,
               coalesce(c.t2_n, 0) AS t2_n, coalesce(c.t1_n, 0) AS t1_n,
               coalesce(c.cvd, false) OR coalesce(p.revasc, false) AS cvd
        FROM c FULL JOIN p ON c.person_id = p.person_id
    """


def _align(person_id: np.ndarray, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``person_id`` (sorted) of the rows of ``table`` that belong to it."""
    ids = table.column("person_id").to_numpy()
    pos = np.searchsorted(person_id, ids)
    pos = np.minimum(pos, max(len(person_id) - 1, 0))
    keep = (len(person_id) > 0) & (person_id[pos] == ids) if len(ids) else np.zeros(0, bool)
    return pos[keep], np.flatnonzero(keep)


def _years(later: np.ndarray, birth: np.ndarray) -> np.ndarray:
    """Completed years between dates (datetime64[D]); NaN where ``later`` is NaT."""
    ly, lm, ld = _ymd(later)
    by, bm, bd = _ymd(birth)
    before = (lm < bm) | ((lm == bm) & (ld < bd))
    years = (ly - by - before).astype(np.float64)
    return np.where(np.isnat(later), np.nan, years)


def _ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = days.astype("datetime64[D]")
    y = d.astype("datetime64[Y]")
    m = d.astype("datetime64[M]")
    return (
        y.astype(np.int64) + 1970,
        (m - y.astype("datetime64[M]")).astype(np.int64) + 1,
        (d - m.astype("datetime64[D]")).astype(np.int64) + 1,
    )


def default_index_date(region: Region) -> date:
    end = (region.manifest.get("period") or {}).get("end")
    if not end:
        raise InputError(
            f"region {region.name!r} has no period end in its manifest; give an index date"
        )
    return date.fromisoformat(str(end))


def extract_inputs(
    region: Region,
    *,
    index_date: date | None = None,
    lookback: Lookback | None = None,
    impute: bool = False,
    con: Any = None,
) -> RiskInputs:
    """Inputs for everyone alive and under observation on ``index_date``."""
    idx = index_date or default_index_date(region)
    lookback = lookback or Lookback()
    con = con or region.duckdb()
    params = {"idx": idx}
    pop, labs, smoking, history = (
        con.sql(sql, params=params).to_arrow_table()
        for sql in (_population_sql(), _labs_sql(lookback), _smoking_sql(lookback), _history_sql())
    )

    person_id = pop.column("person_id").to_numpy()
    n = len(person_id)
    birth = pop.column("birth").to_numpy().astype("datetime64[D]")
    female = pop.column("female").to_numpy(zero_copy_only=False).astype(bool)
    known_sex = pop.column("known_sex").to_numpy(zero_copy_only=False).astype(bool)
    age = _years(np.full(n, np.datetime64(idx, "D")), birth)
    cols: dict[str, np.ndarray] = {
        "person_id": person_id,
        "age": age,
        "sex": np.where(known_sex, np.where(female, "female", "male"), "unknown"),
        "municipality_code": pop.column("municipality_code").to_numpy(zero_copy_only=False),
        "deprivation_quintile": _nullable_int(pop.column("deprivation_quintile"), n),
        "care_site_id": _nullable_int(pop.column("care_site_id"), n),
    }
    dest, rows = _align(person_id, labs)
    for name in ("sbp", "total_chol", "hdl", "hba1c", "creatinine"):
        values = np.full(n, np.nan)
        values[dest] = labs.column(name).to_numpy(zero_copy_only=False)[rows].astype(float)
        cols[name] = values
        dates = np.full(n, np.datetime64("NaT"), "datetime64[D]")
        dates[dest] = labs.column(f"{name}_date").to_numpy(zero_copy_only=False)[rows]
        cols[f"{name}_date"] = dates
    cols["egfr"] = _egfr(cols["creatinine"], _years(cols["creatinine_date"], birth), cols["sex"])

    status = np.full(n, -1, np.int8)
    dest, rows = _align(person_id, smoking)
    status[dest] = smoking.column("smoking").to_numpy(zero_copy_only=False)[rows]
    cols["smoking_status"] = status  # -1 unknown, else index into SMOKING_STATUS

    t2_first = np.full(n, np.datetime64("NaT"), "datetime64[D]")
    t1_n, t2_n, cvd = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, bool)
    dest, rows = _align(person_id, history)
    t2_first[dest] = history.column("t2_first").to_numpy(zero_copy_only=False)[rows]
    t1_n[dest] = history.column("t1_n").to_numpy()[rows]
    t2_n[dest] = history.column("t2_n").to_numpy()[rows]
    cvd[dest] = history.column("cvd").to_numpy(zero_copy_only=False)[rows]
    # Mixed coding happens; the type recorded more often wins (type 1 on a tie).
    type1 = (t1_n > 0) & (t1_n >= t2_n)
    type2 = (t2_n > 0) & ~type1
    cols["type1_diabetes"], cols["type2_diabetes"] = type1, type2
    cols["age_at_diagnosis"] = np.where(type2, _years(t2_first, birth), np.nan)
    cols["established_cvd"] = cvd
    return assign(idx, lookback, cols, impute=impute)


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
    "Exclusion",
    "Lookback",
    "Missing",
    "RiskInputs",
    "default_index_date",
    "extract_inputs",
    "index_minus_years",
]

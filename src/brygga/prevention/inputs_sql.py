"""The queries behind ``inputs.extract_inputs``: every input for everyone at once.

Eight queries (population, five labs, smoking, history), each written once as an Ibis
expression over a cohort engine's tables (``engines.IbisEngine.table``), so the same code runs
on DuckDB and on Spark; each is one scan of its tables and comes back as Arrow, and numpy
assembles the rows by ``person_id``. What keeps them fast on a large region:

* **plain column filters** (code, date window) that DuckDB uses to skip row groups by their
  min/max zone maps (the optimized database, ``records/optimize.py``, sorts events by code,
  date, person, so a window reads only its dates; the Parquet parts by code, person, date);
  one query per lab (see ``lab_query``), one scan for smoking, one for the diagnoses;
* **the latest value per person** by ``max_by`` over one (date, row id) key: the latest
  date, ties to the larger row id (a missing id counts as the smallest). ``max_by`` is DuckDB's
  ``arg_max`` and Spark's own; Ibis' ``argmax`` becomes an ordered ``first`` on DuckDB, 20 %
  slower. The key is one BIGINT (days into the window times the span of the table's row ids,
  plus the id's offset) whenever that fits in 63 bits, which the ids' range from the Parquet
  footers tells (``inputs.id_range``, no scan); else a struct (date, id), which orders the same
  but made DuckDB's lab queries about 1.5 times slower. (The hand-written DuckDB SQL this
  replaced used one HUGEINT, which other engines lack.)
* **results sorted by ``person_id`` but not joined**: hash-joining them to millions of people
  cost more than the scans. numpy places each result's rows in the population by binary search
  of the sorted ids (``inputs._place``), which stays in cache;
* **the population** from ``cohort.population`` (the one definition): the optimized database's
  ``population`` table when present, else person / observation_period / death;
* **dates as YYYYMMDD integers** where ages are needed (completed years are a difference
  divided by 10,000), instead of numpy calendar conversions (seconds at this size);
* code prefixes as ranges (``'E11' <= code < 'E12'``), which prune like any comparison.
"""

from __future__ import annotations

__all__ = [
    "CVD_EVENT_ICD10",
    "ESTABLISHED_CVD_ICD10",
    "ESTABLISHED_CVD_KVA",
    "LABS",
    "SMOKING_KEYS",
    "TYPE1_DIABETES_ICD10",
    "TYPE2_DIABETES_ICD10",
    "IdRange",
    "cvd_events",
    "history_query",
    "in_window",
    "lab_query",
    "latest",
    "latest_key",
    "population_query",
    "prefix",
    "required",
    "smoking_query",
    "window",
    "ymd",
]

from datetime import date, timedelta

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from brygga.cohort.population import Tables, born_ymd, counted
from brygga.records import codes as K

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

# (lab key in codes.LABS, output column, look-back field of inputs.Lookback)
LABS: tuple[tuple[str, str, str], ...] = (
    ("SBP", "sbp", "sbp"),
    ("TC", "total_chol", "lipids"),
    ("HDL", "hdl", "lipids"),
    ("HbA1c", "hba1c", "hba1c"),
    ("creatinine", "creatinine", "creatinine"),
)
# Smoking status codes in the order of inputs.SMOKING_STATUS (never, ex, current).
SMOKING_KEYS = ("never_smoker", "ex_smoker", "smoker")
_NO_ID = -(2**63)  # a missing row id loses every tie


def ymd(day: ir.DateValue) -> ir.IntegerValue:
    """A date as the integer YYYYMMDD: completed years between two are (later - earlier) // 10000."""
    return (day.year() * 10000 + day.month() * 100 + day.day()).cast("int64")


def required(tables: Tables, name: str) -> ir.Table:
    table = tables.table(name)
    if table is None:
        raise KeyError(f"the region has no {name} table")
    return table


# A cardiovascular event for program evaluation and score validation: MI (I21-I22) or stroke
# (I61, I63, I64) recorded, or a death from a cardiovascular cause (I00-I99).
CVD_EVENT_ICD10: tuple[str, ...] = ("I21", "I22", "I61", "I63", "I64")


def cvd_events(tables: Tables, start: date, end: date) -> ir.Table:
    """Every cardiovascular event in (start, end]: ``person_id`` and the day ``d``."""
    c = required(tables, "condition_occurrence")
    c = c.filter(
        ibis.or_(*(c.condition_source_value.startswith(code) for code in CVD_EVENT_ICD10)),
        c.condition_start_date > start,
        c.condition_start_date <= end,
    )
    d = required(tables, "death")
    d = d.filter(
        (d.cause_source_value >= "I00") & (d.cause_source_value < "J"),
        d.death_date > start,
        d.death_date <= end,
    )
    return c.select(person_id=c.person_id.cast("int64"), d=c.condition_start_date).union(
        d.select(person_id=d.person_id.cast("int64"), d=d.death_date)
    )


def population_query(tables: Tables, index_date: date) -> ir.Table:
    """Everyone who counts on ``index_date`` (``cohort.population``, the one definition), with
    what the scores need, in ``person_id`` order."""
    p = counted(tables, index_date)
    if "deprivation_quintile" not in p.columns:
        # The optimized population table is narrow: deprivation and care site from person.
        p = required(tables, "person").semi_join(p.select("person_id"), "person_id")
    return p.select(
        person_id=p.person_id.cast("int64"),
        female=p.gender_concept_id == K.GENDER_FEMALE,
        known_sex=p.gender_concept_id.isin(list(K.SEX_OF_GENDER)),
        born=born_ymd(p),
        municipality_code=p.municipality_code,
        deprivation_quintile=p.deprivation_quintile,
        care_site_id=p.care_site_id,
    ).order_by("person_id")


def window(index_date: date, days: int) -> tuple[date, date]:
    """The look-back window of ``days`` up to and including ``index_date``: (after, until]."""
    return index_date - timedelta(days=int(days)), index_date


def in_window(day: ir.DateValue, index_date: date, days: int) -> ir.BooleanValue:
    """``day`` within the ``days`` up to and including ``index_date``."""
    after, until = window(index_date, days)
    return (day > after) & (day <= until)


IdRange = tuple[int, int]  # the smallest and the largest row id of a table


@ibis.udf.agg.builtin(name="max_by")
def _max_by_float(arg: dt.float64, key: dt.int64) -> dt.float64:  # type: ignore[empty-body]
    """The ``arg`` of the row with the largest ``key`` (DuckDB: arg_max; Spark: max_by)."""


@ibis.udf.agg.builtin(name="max_by")
def _max_by_int8(arg: dt.int8, key: dt.int64) -> dt.int8:  # type: ignore[empty-body]
    """As ``_max_by_float``, for small integers (smoking status)."""


def latest(value: ir.Value, key: ir.Value) -> ir.Scalar:
    """The ``value`` of the row with the largest ``key`` (from ``latest_key``)."""
    if key.type().is_integer():
        if value.type().is_floating():
            return _max_by_float(value.cast("float64"), key)
        return _max_by_int8(value.cast("int8"), key)
    return value.argmax(key)


def latest_key(
    day: ir.DateValue,
    row_id: ir.IntegerValue,
    after: date | None = None,
    until: date | None = None,
    ids: IdRange | None = None,
) -> ir.Value:
    """Orders rows by date, then row id (a missing id first): the key of "the latest".

    For rows dated in (``after``, ``until``] with ids in ``ids``, one BIGINT when it fits:
    (days since ``after``) x span + (id - smallest + 1), 0 for a missing id; else a struct."""
    if after is not None and until is not None and ids is not None:
        lo, hi = ids
        span = hi - lo + 2  # ids lo..hi -> 1..span-1; a missing id -> 0
        if ((until - after).days + 1) * span < 2**63:
            days = day.delta(ibis.date(after), unit="day").cast("int64")
            offset = (row_id.cast("int64") - (lo - 1)).fill_null(0)
            return days * span + offset
    return ibis.struct({"d": day, "i": row_id.cast("int64").fill_null(_NO_ID)})


def lab_query(
    tables: Tables, key: str, index_date: date, days: int, ids: IdRange | None = None
) -> ir.Table:
    """The latest value of one lab (``codes.LABS`` key) per person within ``days``
    (``ids``: the range of ``measurement_id``, for the faster key; see ``latest_key``).

    One query per lab, not one for all five: each scan is pruned to its own window, and five
    hash aggregates of at most one group per person were 2.5 times faster at scale 1.0 than
    one aggregate over 5 million (person, lab) groups."""
    m = required(tables, "measurement")
    m = m.filter(
        m.measurement_source_value == K.LABS[key].code,
        in_window(m.measurement_date, index_date, days),
        m.value_as_number.notnull() & ~m.value_as_number.isnan(),
    )
    found = m.group_by("person_id").aggregate(
        v=latest(
            m.value_as_number,
            latest_key(m.measurement_date, m.measurement_id, *window(index_date, days), ids),
        ),
        d=m.measurement_date.max(),
    )
    return found.select(
        person_id=found.person_id.cast("int64"), v=found.v, d=found.d, d_ymd=ymd(found.d)
    ).order_by("person_id")


def smoking_query(
    tables: Tables, index_date: date, days: int, ids: IdRange | None = None
) -> ir.Table:
    """The latest smoking status per person within ``days``: 0 never, 1 ex, 2 current
    (``ids``: the range of ``observation_id``)."""
    codes = [K.OBSERVATIONS[key].code for key in SMOKING_KEYS]
    o = required(tables, "observation")
    o = o.filter(
        o.observation_source_value.isin(codes), in_window(o.observation_date, index_date, days)
    )
    status = o.observation_source_value.cases(*((c, i) for i, c in enumerate(codes)))
    found = o.group_by("person_id").aggregate(
        smoking=latest(
            status.cast("int8"),
            latest_key(o.observation_date, o.observation_id, *window(index_date, days), ids),
        ).cast("int8")
    )
    return found.select(person_id=found.person_id.cast("int64"), smoking=found.smoking).order_by(
        "person_id"
    )


def prefix(column: ir.StringValue, prefixes: tuple[str, ...]) -> ir.BooleanValue:
    """``column`` starts with one of ``prefixes``, as ranges (``'E11' <= c < 'E12'``)."""
    ranges = [(column >= p) & (column < _after(p)) for p in prefixes]
    out = ranges[0]
    for r in ranges[1:]:
        out |= r
    return out


def _after(prefix: str) -> str:
    """The smallest string greater than every string that starts with ``prefix`` (ASCII)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


# The kind of a history row (the prefix sets are disjoint): computed once per row.
_TYPE1, _TYPE2, _CVD = 1, 2, 3


def history_query(tables: Tables, index_date: date) -> ir.Table:
    """Per person with any: type 2 / type 1 diagnosis counts, the first type 2 date (YYYYMMDD)
    and established CVD (a diagnosis or a revascularisation), on or before ``index_date``."""
    c = required(tables, "condition_occurrence")
    code = c.condition_source_value
    t2, t1 = prefix(code, TYPE2_DIABETES_ICD10), prefix(code, TYPE1_DIABETES_ICD10)
    c = c.filter(
        c.condition_start_date <= index_date, t2 | t1 | prefix(code, ESTABLISHED_CVD_ICD10)
    )
    rows = c.select(
        person_id=c.person_id.cast("int64"),
        day=c.condition_start_date,
        kind=ibis.cases((t2, _TYPE2), (t1, _TYPE1), else_=_CVD).cast("int8"),
    )
    p = required(tables, "procedure_occurrence")
    p = p.filter(
        p.procedure_date <= index_date, prefix(p.procedure_source_value, ESTABLISHED_CVD_KVA)
    )
    rows = rows.union(
        p.select(
            person_id=p.person_id.cast("int64"),
            day=p.procedure_date,
            kind=ibis.literal(_CVD, "int8"),
        )
    )
    type2 = rows.kind == _TYPE2
    history = rows.group_by("person_id").aggregate(
        t2_first=rows.day.min(where=type2),
        t2_n=rows.count(where=type2),
        t1_n=rows.count(where=rows.kind == _TYPE1),
        cvd=(rows.kind == _CVD).any(),
    )
    return history.select(
        "person_id", "t2_n", "t1_n", "cvd", t2_first=ymd(history.t2_first)
    ).order_by("person_id")

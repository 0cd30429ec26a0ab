"""Calibration report: a region's figures beside the targets in region-facts.md.

Every measure is computed from the region's tables with DuckDB, the way a data steward would
compute it from a real extract (residents = people under observation and alive at the end date;
recent rates over the last five years; latest values over the last three). A row is within
tolerance when ``|value - target| <= tolerance x target + 2 x sampling SE``: small regions carry
sampling noise that says nothing about the model, so the report shows the SE too.
"""

from __future__ import annotations

__all__ = [
    "REPORT_COLUMNS",
    "Row",
    "calibration_report",
    "render_report",
    "report_document",
    "write_report",
]

import math
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from brygga.cohort.population import DuckDBViews, counted
from brygga.records.codes import GENDER_MALE
from brygga.records.store import Region
from brygga.synth.targets import AGE_SHARES, DEATHS_PER_1000, LIFE_EXPECTANCY, REGIONS
from brygga.util import atomic_write_text


@dataclass(frozen=True)
class Row:
    group: str
    measure: str
    target: float
    target_hi: float | None  # a range target: [target, target_hi]
    value: float | None
    se: float
    tolerance: float
    unit: str = ""

    @property
    def ok(self) -> bool:
        if self.value is None or math.isnan(self.value):
            return False
        hi = self.target if self.target_hi is None else self.target_hi
        slack = 2 * self.se
        return (
            self.target * (1 - self.tolerance) - slack
            <= self.value
            <= hi * (1 + self.tolerance) + slack
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _scalar(con: Any, sql: str, params: list[Any] | None = None) -> Any:
    return con.execute(sql, params or []).fetchone()[0]


def _prop(k: float, n: float) -> tuple[float | None, float]:
    if not n:
        return None, 0.0
    p = k / n
    return p, math.sqrt(max(p * (1 - p), 1e-12) / n)


def calibration_report(region: Region) -> list[Row]:
    con = region.duckdb()
    end = date.fromisoformat(region.manifest.get("period", {}).get("end", "2026-06-30"))
    con.execute(f"SET VARIABLE end_date = DATE '{end.isoformat()}'")
    con.execute(_residents(con, end))
    rows: list[Row] = []
    rows += _population(con, region)
    rows += _age_and_mortality(con)
    rows += _conditions(con)
    rows += _events(con)
    rows += _risk_factors(con)
    rows += _treatment_and_care(con)
    return rows


def _residents(con: Any, end: date) -> str:
    """The people counted at the end date (``cohort.population``) with the calibration's own
    age: fractional years, a missing month of birth taken as July (the mid-year estimate)."""
    views = DuckDBViews(con)
    counted_ids = views.sql(counted(views, end).select("person_id"))
    return f"""
CREATE TEMP TABLE residents AS
SELECT p.person_id, p.gender_concept_id = {GENDER_MALE} AS male, p.municipality_code,
       date_diff('day', make_date(p.year_of_birth, coalesce(p.month_of_birth, 7),
                 coalesce(p.day_of_birth, 1)), getvariable('end_date')) / 365.25 AS age
FROM person p
WHERE p.person_id IN ({counted_ids})
"""


def _population(con: Any, region: Region) -> list[Row]:
    facts = REGIONS.get(str(region.manifest.get("region_key", "")))
    scale = float(region.manifest.get("scale", 1.0))
    total = _scalar(con, "SELECT count(*) FROM residents")
    if facts is None:
        return []
    planned = sum(round(m.population * scale) for m in facts.municipalities)
    rows = [Row("population", "residents (total)", planned, None, total, 0.0, 0.02)]
    counts = dict(
        con.execute("SELECT municipality_code, count(*) FROM residents GROUP BY 1").fetchall()
    )
    for m in facts.municipalities:
        rows.append(
            Row(
                "population",
                f"residents {m.code} {m.name}",
                round(m.population * scale),
                None,
                counts.get(m.code, 0),
                0.0,
                0.02,
            )
        )
    return rows


def _age_and_mortality(con: Any) -> list[Row]:
    n = _scalar(con, "SELECT count(*) FROM residents")
    rows = []
    for label, (lo, hi) in {
        "0-19": (0, 20),
        "20-64": (20, 65),
        "65+": (65, 200),
        "80+": (80, 200),
    }.items():
        k = _scalar(con, f"SELECT count(*) FROM residents WHERE age >= {lo} AND age < {hi}")
        p, se = _prop(k, n)
        rows.append(Row("age", f"share aged {label}", AGE_SHARES[label], None, p, se, 0.10))
    deaths = _scalar(
        con,
        "SELECT count(*) FROM death WHERE death_date > getvariable('end_date') - INTERVAL 5 YEAR "
        "AND death_date <= getvariable('end_date')",
    )
    rate = deaths / 5 / n * 1000 if n else None
    rows.append(
        Row(
            "mortality",
            "deaths per 1,000 residents a year",
            DEATHS_PER_1000,
            None,
            rate,
            math.sqrt(max(deaths, 1)) / 5 / max(n, 1) * 1000,
            0.10,
        )
    )
    for sex, male in (("male", True), ("female", False)):
        le, se = _life_expectancy(con, male)
        rows.append(
            Row(
                "mortality",
                f"life expectancy at birth, {sex}",
                LIFE_EXPECTANCY[sex],
                None,
                le,
                se,
                0.02,
                "years",
            )
        )
    return rows


def _life_expectancy(con: Any, male: bool) -> tuple[float | None, float]:
    """Period life expectancy from the last five years (mid-year populations, 5-year bands)."""
    sql = f"""
    WITH mid AS (SELECT getvariable('end_date') - INTERVAL (y * 12 + 6) MONTH AS d FROM range(5) t(y)),
    pop AS (
      SELECT least(floor(date_diff('day', make_date(p.year_of_birth, coalesce(p.month_of_birth, 7),
                     coalesce(p.day_of_birth, 1)), mid.d) / 365.25 / 5), 20) AS band, count(*) AS py
      FROM person p JOIN observation_period o USING (person_id), mid
      WHERE (p.gender_concept_id = {GENDER_MALE}) = {male}
        AND o.observation_period_start_date <= mid.d AND o.observation_period_end_date >= mid.d
      GROUP BY 1),
    dead AS (
      SELECT least(floor(date_diff('day', make_date(p.year_of_birth, coalesce(p.month_of_birth, 7),
                     coalesce(p.day_of_birth, 1)), d.death_date) / 365.25 / 5), 20) AS band, count(*) AS n
      FROM death d JOIN person p USING (person_id)
      WHERE (p.gender_concept_id = {GENDER_MALE}) = {male}
        AND d.death_date > getvariable('end_date') - INTERVAL 5 YEAR AND d.death_date <= getvariable('end_date')
      GROUP BY 1)
    SELECT pop.band, pop.py, coalesce(dead.n, 0) FROM pop LEFT JOIN dead USING (band) ORDER BY 1
    """
    bands = {int(b): (py, n) for b, py, n in con.execute(sql).fetchall()}
    if not bands:
        return None, 0.0
    alive, le, total_deaths = 1.0, 0.0, 0
    for band in range(21):
        py, n = bands.get(band, (0, 0))
        total_deaths += n
        m = n / py if py else 1.0
        if band == 20:
            le += alive / max(m, 0.15)  # open interval 100+
            break
        q = 1 - math.exp(-5 * m)
        le += 5 * alive * (1 - q / 2)
        alive *= 1 - q
    se = 80 / math.sqrt(max(total_deaths, 1)) * 0.15  # rough: LE noise shrinks with deaths
    return le, se


def _prevalence(con: Any, pattern: str, where: str = "TRUE") -> tuple[float | None, float]:
    n = _scalar(con, f"SELECT count(*) FROM residents WHERE {where}")
    k = _scalar(
        con,
        f"""SELECT count(*) FROM residents r WHERE {where} AND EXISTS (
              SELECT 1 FROM condition_occurrence c WHERE c.person_id = r.person_id
              AND regexp_matches(c.condition_source_value, '{pattern}')
              AND c.condition_start_date <= getvariable('end_date'))""",
    )
    return _prop(k, n)


def _conditions(con: Any) -> list[Row]:
    dm = "^E1[0-4]"
    rows = []
    p, se = _prevalence(con, dm)
    rows.append(Row("health", "diagnosed diabetes (E10-E14), all ages", 0.05, None, p, se, 0.25))
    t2, _ = _prevalence(con, "^E11")
    rows.append(
        Row(
            "health",
            "type 2 share of diagnosed diabetes",
            0.85,
            0.90,
            (t2 or 0) / p if p else None,
            0.01,
            0.25,
        )
    )
    for label, target, where in (
        ("60-69", 0.12, "age >= 60 AND age < 70"),
        ("70-79", 0.16, "age >= 70 AND age < 80"),
    ):
        p, se = _prevalence(con, dm, where)
        rows.append(Row("health", f"diagnosed diabetes, age {label}", target, None, p, se, 0.25))
    men, _ = _prevalence(con, dm, "male AND age >= 40")
    women, _ = _prevalence(con, dm, "NOT male AND age >= 40")
    ratio = men / women if men and women else None
    rows.append(
        Row(
            "health", "diabetes men / women ratio, 40+ (men higher: > 1)", 1.0, 2.0, ratio, 0.0, 0.0
        )
    )
    for measure, pattern, target, where in (
        ("hypertension (I10-I15), adults", "^I1[0-5]", 0.22, "age >= 18"),
        ("hypertension (I10-I15), 65+", "^I1[0-5]", 0.50, "age >= 65"),
        ("atrial fibrillation (I48), adults", "^I48", 0.03, "age >= 18"),
        ("heart failure (I50)", "^I50", 0.02, "TRUE"),
        ("COPD (J44), age 40+", "^J44", 0.05, "age >= 40"),
        ("asthma (J45)", "^J45", 0.08, "TRUE"),
    ):
        p, se = _prevalence(con, pattern, where)
        rows.append(Row("health", measure, target, None, p, se, 0.25))
    p, se = _prevalence(con, "^(F0[0-3]|G30)", "age >= 65")
    rows.append(Row("health", "dementia (F00-F03, G30), 65+", 0.07, 0.08, p, se, 0.25))
    return rows


def _events(con: Any) -> list[Row]:
    n = _scalar(con, "SELECT count(*) FROM residents")
    rows = []
    window = (
        "c.condition_start_date > getvariable('end_date') - INTERVAL 5 YEAR "
        "AND c.condition_start_date <= getvariable('end_date')"
    )
    for label, pattern, target in (
        ("myocardial infarction (I21-I22), new events", "^I2[12]", 220),
        ("stroke (I61, I63, I64), new events", "^I6[134]", 200),
    ):
        k = _scalar(
            con,
            f"SELECT count(*) FROM (SELECT DISTINCT person_id, condition_start_date FROM condition_occurrence c "
            f"WHERE regexp_matches(c.condition_source_value, '{pattern}') AND {window})",
        )
        rows.append(
            Row(
                "health",
                f"{label} per 100,000 a year",
                target,
                None,
                k / 5 / n * 1e5,
                math.sqrt(max(k, 1)) / 5 / n * 1e5,
                0.25,
            )
        )
    mi = con.execute(
        f"""SELECT avg((p.gender_concept_id = {GENDER_MALE})::INT), count(*),
                   avg(date_diff('day', make_date(p.year_of_birth, coalesce(p.month_of_birth, 7), 1), c.condition_start_date) / 365.25),
                   stddev(date_diff('day', make_date(p.year_of_birth, coalesce(p.month_of_birth, 7), 1), c.condition_start_date) / 365.25)
            FROM (SELECT DISTINCT person_id, condition_start_date FROM condition_occurrence c
                  WHERE regexp_matches(c.condition_source_value, '^I2[12]') AND {window}) c
            JOIN person p USING (person_id)"""
    ).fetchone()
    men, k, mean_age, sd_age = mi
    _, se = _prop((men or 0) * k, k)
    rows.append(Row("health", "myocardial infarction: share men", 0.60, None, men, se, 0.25))
    rows.append(
        Row(
            "health",
            "myocardial infarction: mean age",
            71,
            None,
            mean_age,
            (sd_age or 0) / math.sqrt(max(k, 1)),
            0.25,
            "years",
        )
    )
    k = _scalar(
        con,
        """SELECT count(*) FROM (SELECT person_id, left(condition_source_value, 3) AS code,
                min(condition_start_date) AS first FROM condition_occurrence
                WHERE regexp_matches(condition_source_value, '^C[0-9]') GROUP BY 1, 2) c
            WHERE c.first > getvariable('end_date') - INTERVAL 5 YEAR AND c.first <= getvariable('end_date')""",
    )
    rows.append(
        Row(
            "health",
            "cancer (C00-C97) new cases per 100,000 a year",
            650,
            None,
            k / 5 / n * 1e5,
            math.sqrt(max(k, 1)) / 5 / n * 1e5,
            0.25,
        )
    )
    return rows


def _latest(con: Any, code: str, where: str, years: int = 3) -> str:
    return f"""SELECT r.*, m.value_as_number AS v FROM residents r JOIN (
                 SELECT person_id, arg_max(value_as_number, measurement_date) AS value_as_number
                 FROM measurement WHERE measurement_source_value = '{code}'
                 AND measurement_date > getvariable('end_date') - INTERVAL {years} YEAR
                 AND measurement_date <= getvariable('end_date') GROUP BY 1) m USING (person_id)
               WHERE {where}"""


def _risk_factors(con: Any) -> list[Row]:
    rows = []
    smk = con.execute(
        """SELECT avg((s.code = '77176002')::INT), count(*) FROM residents r JOIN (
             SELECT person_id, arg_max(observation_source_value, observation_date) AS code
             FROM observation WHERE observation_source_vocabulary = 'SNOMED'
             AND observation_date > getvariable('end_date') - INTERVAL 3 YEAR GROUP BY 1) s USING (person_id)
           WHERE r.age >= 18"""
    ).fetchone()
    _, se = _prop((smk[0] or 0) * smk[1], smk[1])
    rows.append(
        Row(
            "health", "daily smoking, adults (latest recorded status)", 0.06, None, smk[0], se, 0.25
        )
    )
    bmi = con.execute(
        f"SELECT avg((v >= 30)::INT), avg((v >= 25)::INT), count(*) FROM ({_latest(con, '39156-5', 'age >= 18')})"
    ).fetchone()
    rows.append(
        Row(
            "health",
            "obesity (BMI >= 30), adults (latest BMI)",
            0.16,
            None,
            bmi[0],
            _prop((bmi[0] or 0) * bmi[2], bmi[2])[1],
            0.25,
        )
    )
    rows.append(
        Row(
            "health",
            "overweight or obese (BMI >= 25), adults",
            0.52,
            None,
            bmi[1],
            _prop((bmi[1] or 0) * bmi[2], bmi[2])[1],
            0.25,
        )
    )
    for label, code, target, sd_target, where, unit in (
        ("systolic blood pressure", "8480-6", 130, 17, "age >= 40 AND age < 70", "mmHg"),
        ("total cholesterol", "NPU01566", 5.4, 1.0, "age >= 40 AND age < 70", "mmol/L"),
    ):
        mean, sd, k = con.execute(
            f"SELECT avg(v), stddev(v), count(*) FROM ({_latest(con, code, where)})"
        ).fetchone()
        rows.append(
            Row(
                "risk factors 40-69",
                f"{label}, mean",
                target,
                None,
                mean,
                (sd or 0) / math.sqrt(max(k, 1)),
                0.10,
                unit,
            )
        )
        rows.append(
            Row(
                "risk factors 40-69",
                f"{label}, SD",
                sd_target,
                None,
                sd,
                (sd or 0) / math.sqrt(max(2 * k, 1)),
                0.25,
                unit,
            )
        )
    for sex, target in (("men", 1.3), ("women", 1.6)):
        where = f"age >= 40 AND age < 70 AND {'male' if sex == 'men' else 'NOT male'}"
        mean, sd, k = con.execute(
            f"SELECT avg(v), stddev(v), count(*) FROM ({_latest(con, 'NPU01567', where)})"
        ).fetchone()
        rows.append(
            Row(
                "risk factors 40-69",
                f"HDL cholesterol, {sex}, mean",
                target,
                None,
                mean,
                (sd or 0) / math.sqrt(max(k, 1)),
                0.10,
                "mmol/L",
            )
        )
    dm = "EXISTS (SELECT 1 FROM condition_occurrence c WHERE c.person_id = r.person_id AND regexp_matches(c.condition_source_value, '^E1[0-4]'))"
    t2 = "EXISTS (SELECT 1 FROM condition_occurrence c WHERE c.person_id = r.person_id AND regexp_matches(c.condition_source_value, '^E11'))"
    for label, where, target in (
        ("without diabetes", f"NOT {dm}", 36),
        ("with type 2 diabetes", t2, 55),
    ):
        mean, sd, k = con.execute(
            f"SELECT avg(v), stddev(v), count(*) FROM ({_latest(con, 'NPU27300', 'age >= 40 AND age < 70 AND ' + where)})"
        ).fetchone()
        rows.append(
            Row(
                "risk factors 40-69",
                f"HbA1c {label}, mean",
                target,
                None,
                mean,
                (sd or 0) / math.sqrt(max(k, 1)),
                0.10,
                "mmol/mol",
            )
        )
    return rows


def _dispensed(con: Any, pattern: str, where: str) -> tuple[float | None, float]:
    n = _scalar(con, f"SELECT count(*) FROM residents r WHERE {where}")
    k = _scalar(
        con,
        f"""SELECT count(*) FROM residents r WHERE {where} AND EXISTS (
              SELECT 1 FROM drug_exposure d WHERE d.person_id = r.person_id
              AND regexp_matches(d.drug_source_value, '{pattern}')
              AND d.drug_exposure_start_date > getvariable('end_date') - INTERVAL 1 YEAR
              AND d.drug_exposure_start_date <= getvariable('end_date'))""",
    )
    return _prop(k, n)


def _treatment_and_care(con: Any) -> list[Row]:
    rows = []
    p, se = _dispensed(con, "^C10AA", "age >= 40")
    rows.append(Row("treatment", "statins dispensed last year, 40+", 0.12, 0.15, p, se, 0.25))
    t2 = "EXISTS (SELECT 1 FROM condition_occurrence c WHERE c.person_id = r.person_id AND regexp_matches(c.condition_source_value, '^E11'))"
    p, se = _dispensed(con, "^A10BA02", t2)
    rows.append(
        Row("treatment", "metformin among people with type 2 diabetes", 0.60, None, p, se, 0.25)
    )
    p, se = _dispensed(con, "^C0[23789]", "age >= 18")
    rows.append(Row("treatment", "blood-pressure drugs, adults", 0.25, None, p, se, 0.25))
    n = _scalar(con, "SELECT count(*) FROM residents")
    for label, concept, lo, hi in (
        ("primary-care visits", 9202, 2.0, 3.0),
        ("hospital stays", 9201, 0.1, None),
    ):
        k = _scalar(
            con,
            f"""SELECT count(*) FROM visit_occurrence v JOIN residents r USING (person_id)
                WHERE v.visit_concept_id = {concept}
                AND v.visit_start_date > getvariable('end_date') - INTERVAL 1 YEAR
                AND v.visit_start_date <= getvariable('end_date')""",
        )
        rows.append(
            Row(
                "care",
                f"{label} per person a year",
                lo,
                hi,
                k / n if n else None,
                math.sqrt(max(k, 1)) / max(n, 1),
                0.25,
                "per person",
            )
        )
    return rows


def _fmt(v: float | None, unit: str, target: float) -> str:
    if v is None:
        return "-"
    if unit == "per person":
        return f"{v:.3f}"
    if unit or target >= 20:
        return f"{v:,.1f}"
    return f"{v:.2%}" if target < 1.0 else f"{v:.2f}"


REPORT_COLUMNS = ("group", "measure", "target", "value", "SE", "tolerance", "within")


def report_document(region: Region, rows: list[Row]) -> dict[str, Any]:
    """The calibration report as a title, sentences and rows of formatted cells (the last
    cell a bool): ``render_report`` writes it as Markdown, ``brygga synth-report`` as a table."""
    within = sum(r.ok for r in rows)
    period = region.manifest.get("period", {})
    cells = []
    for r in rows:
        target = _fmt(r.target, r.unit, r.target) + (
            "" if r.target_hi is None else f" - {_fmt(r.target_hi, r.unit, r.target)}"
        )
        cells.append([
            r.group, r.measure, target, _fmt(r.value, r.unit, r.target),
            _fmt(r.se, r.unit, r.target), f"{r.tolerance:.0%}", r.ok,
        ])  # fmt: skip
    return {
        "title": f"Calibration report: {region.name}",
        "about": (
            f"Region {region.path.name} (seed {region.manifest.get('seed')}, scale "
            f"{region.manifest.get('scale')}, period {period.get('start')} to "
            f"{period.get('end')}). Targets from shared/reference/region-facts.md. Within "
            "tolerance means |value - target| <= tolerance x target + 2 x sampling SE."
        ),
        "summary": f"{within} of {len(rows)} targets within tolerance",
        "columns": list(REPORT_COLUMNS),
        "rows": cells,
    }


def _md(text: str) -> str:
    # A cell's own "|" would split the Markdown row (the report's rows were broken by it).
    return text.replace("|", "\\|")


def render_report(region: Region, rows: list[Row]) -> str:
    doc = report_document(region, rows)
    period = region.manifest.get("period", {})
    lines = [
        f"# {doc['title']}",
        "",
        f"Region `{region.path.name}` (seed {region.manifest.get('seed')}, scale {region.manifest.get('scale')}, "
        f"period {period.get('start')} to {period.get('end')}).",
        "Targets from `shared/reference/region-facts.md`. Within tolerance means "
        "\\|value - target\\| <= tolerance x target + 2 x sampling SE.",
        "",
        f"**{doc['summary']}.**",
        "",
        "| " + " | ".join(doc["columns"]) + " |",
        "|" + "---|" * len(doc["columns"]),
    ]
    for *texts, ok in doc["rows"]:
        lines.append("| " + " | ".join(_md(t) for t in texts) + f" | {'yes' if ok else '**no**'} |")
    return "\n".join(lines) + "\n"


def write_report(region: Region) -> list[Row]:
    rows = calibration_report(region)
    atomic_write_text(region.path / "calibration.md", render_report(region, rows))
    return rows

"""Care events from a simulated life course: the rows of a region's OMOP tables.

Year by year over the record period, and only while a person is in the region's records, this
turns the life course into what a regional data warehouse would hold: primary-care visits
(more with age and chronic disease), hospital stays at acute events, diagnoses at onset and
again at follow-up visits, laboratory tests and measurements at visits (HbA1c far more often
for people with diabetes), quarterly drug dispensings from treatment start, smoking status,
procedures and deaths. Vectorized over people and rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from brygga.records import codes as K
from brygga.synth import _params as P
from brygga.synth._lifecourse import CANCERS, CHRONIC, NONE, YEAR, Events, LifeCourse

ROWS_PER_CHUNK = 10_000_000_000  # id space per chunk: ids are chunk * this + running number

_CONDITION_KEYS = tuple(K.CONDITIONS)
_DX = {key: i for i, key in enumerate(_CONDITION_KEYS)}
_DX_CODES = pa.array([K.CONDITIONS[k].code for k in _CONDITION_KEYS])
_DX_CONCEPTS = np.array([K.CONDITIONS[k].concept_id for k in _CONDITION_KEYS], np.int32)
_LAB_KEYS = tuple(K.LABS)
_LAB = {key: i for i, key in enumerate(_LAB_KEYS)}
_LAB_CODES = pa.array([K.LABS[k].code for k in _LAB_KEYS])
_LAB_VOCABS = pa.array([K.LABS[k].vocabulary for k in _LAB_KEYS])
_LAB_UNITS = pa.array([K.LABS[k].unit for k in _LAB_KEYS])
_LAB_CONCEPTS = np.array([K.LABS[k].concept_id for k in _LAB_KEYS], np.int32)
_LAB_UNIT_CONCEPTS = np.array([K.LABS[k].unit_concept_id for k in _LAB_KEYS], np.int32)
# Normal ranges (OMOP range_low/range_high) of the laboratory tests: adult reference intervals
# of the kind Swedish laboratories report, one per test whatever the age and sex (a simplification
# of the synthetic region). Clinical measurements (blood pressure, BMI, weight, height) have none.
_NORMAL = {
    "HbA1c": (27.0, 42.0),
    "TC": (3.3, 6.9),
    "HDL": (1.0, 2.7),
    "LDL": (1.2, 4.3),
    "creatinine": (45.0, 105.0),
}
_LAB_LOW = np.array([_NORMAL.get(k, (np.nan, np.nan))[0] for k in _LAB_KEYS])
_LAB_HIGH = np.array([_NORMAL.get(k, (np.nan, np.nan))[1] for k in _LAB_KEYS])
_DRUG_KEYS = tuple(K.DRUGS)
_DRUG_CODES = pa.array([K.DRUGS[k].code for k in _DRUG_KEYS])
_SMOKING = (K.OBSERVATIONS["never_smoker"], K.OBSERVATIONS["ex_smoker"], K.OBSERVATIONS["smoker"])
_PROC_KEYS = tuple(K.PROCEDURES)
_PROC_CODES = pa.array([K.PROCEDURES[k].code for k in _PROC_KEYS])


def _normal(values: np.ndarray) -> pa.Array:
    """A normal-range end per record; null where the test has none."""
    return pa.array(values, type=pa.float64(), mask=np.isnan(values))


def _dict(indices: np.ndarray, dictionary: pa.Array) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32)), dictionary)


def _const(value: str, n: int) -> pa.DictionaryArray:
    return _dict(np.zeros(n, np.int32), pa.array([value]))


@dataclass
class _Columns:
    """Column arrays collected year by year, concatenated once."""

    parts: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, **columns: np.ndarray) -> None:
        for k, v in columns.items():
            self.parts.setdefault(k, []).append(np.asarray(v))

    def get(self, name: str, dtype: type | None = None) -> np.ndarray:
        parts = self.parts.get(name, [])
        if not parts:
            return np.empty(0, dtype or np.int64)
        return np.concatenate(parts)

    def __len__(self) -> int:
        first = next(iter(self.parts.values()), [])
        return sum(len(p) for p in first)


def _repeat_offsets(counts: np.ndarray) -> np.ndarray:
    """For counts [2, 0, 3] -> [0, 1, 0, 1, 2]: the k-th item within each repeat."""
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, np.int64)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total) - starts


@dataclass
class CareGenerator:
    lc: LifeCourse
    rng: np.random.Generator
    chunk: int
    person_ids: np.ndarray
    primary_sites: list[np.ndarray]  # per municipality: care_site ids of its vårdcentraler
    hospital_site: np.ndarray  # per municipality: care_site id of its nearest hospital
    visits: _Columns = field(default_factory=_Columns)
    conditions: _Columns = field(default_factory=_Columns)
    measurements: _Columns = field(default_factory=_Columns)
    observations: _Columns = field(default_factory=_Columns)
    drugs: _Columns = field(default_factory=_Columns)
    procedures: _Columns = field(default_factory=_Columns)
    _next_visit: int = 0

    def __post_init__(self) -> None:
        n = len(self.lc)
        male = self.lc.male
        self.height = np.where(male, 179.0, 166.0) + self.rng.normal(0, 6.5, n)
        self.listed_site = np.array(
            [
                sites[i % len(sites)]
                for sites, i in zip(
                    (self.primary_sites[m] for m in self.lc.municipality),
                    self.rng.integers(0, 1 << 30, n),
                    strict=True,
                )
            ],
            dtype=np.int64,
        )
        self._cancer_kind = self._first_cancer_kind()
        self._settle_in = self.rng.integers(0, 183, n)  # days from entry to a first visit

    # --- visits ---------------------------------------------------------------------------

    def _new_visits(
        self, person: np.ndarray, start: np.ndarray, length: np.ndarray, kind: int
    ) -> np.ndarray:
        n = len(person)
        ids = self.chunk * ROWS_PER_CHUNK + self._next_visit + np.arange(n, dtype=np.int64)
        self._next_visit += n
        if kind == K.VISIT_INPATIENT:
            site = self.hospital_site[self.lc.municipality[person]]
            source = "inpatient"
        else:
            site = self.listed_site[person]
            source = "primary care"
        self.visits.add(
            visit_occurrence_id=ids,
            person=person,
            visit_concept_id=np.full(n, kind, np.int32),
            visit_start_date=start.astype(np.int32),
            visit_end_date=(start + length).astype(np.int32),
            care_site_id=site,
            source=np.full(n, 0 if source == "primary care" else 1, np.int8),
        )
        return ids

    def _diagnose(
        self, person: np.ndarray, day: np.ndarray, visit: np.ndarray, dx: np.ndarray | int
    ) -> None:
        dx = np.broadcast_to(np.asarray(dx, np.int32), person.shape)
        self.conditions.add(person=person, day=day.astype(np.int32), visit=visit, dx=dx)

    def generate(self) -> None:
        lc = self.lc
        years = lc.yearly["bmi"].shape[0]
        for r in range(years):
            t0 = lc.record_start + r * YEAR
            lo = np.maximum(lc.entry, np.ceil(t0)).astype(np.int64)
            year_end = np.ceil(t0 + YEAR) if r < years - 1 else lc.end + 1  # end date included
            hi = np.minimum(lc.exit + 1, year_end).astype(np.int64)
            live = np.flatnonzero(hi > lo)
            if not len(live):
                continue
            self._year(r, live, lo[live], hi[live])
        self._events()

    def _year(self, r: int, live: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        lc, rng = self.lc, self.rng
        mid = (lo + hi) / 2
        age = (mid - lc.birth[live]) / YEAR
        n_chronic = sum((lc.onset[k][live] <= mid) for k in CHRONIC)
        rate = (
            np.where(
                age < 18,
                P.PRIMARY_CHILD,
                P.PRIMARY_BASE + P.PRIMARY_PER_AGE_YEAR * np.maximum(age - 40, 0),
            )
            + P.PRIMARY_PER_CONDITION * n_chronic
        )
        count = rng.poisson(rate * (hi - lo) / YEAR)
        person = np.repeat(live, count)
        span = np.repeat(hi - lo, count)
        day = np.repeat(lo, count) + (rng.random(len(person)) * span).astype(np.int64)
        visit = self._new_visits(person, day, np.zeros(len(person), np.int64), K.VISIT_OUTPATIENT)
        self._visit_content(r, person, day, visit)
        self._onsets(live, lo, hi)
        self._hospital(live, age, lo, hi)
        self._dispensings(live, lo, hi)
        screening = (age >= 60) & (age < 75) & (rng.random(len(live)) < 0.02 * (hi - lo) / YEAR)
        self._procedure(live[screening], (lo + (hi - lo) // 2)[screening], None, "colonoscopy")

    def _visit_content(
        self, r: int, person: np.ndarray, day: np.ndarray, visit: np.ndarray
    ) -> None:
        lc, rng = self.lc, self.rng
        n = len(person)
        coded = np.zeros(n, bool)
        for key in CHRONIC:
            has = lc.onset[key][person] <= day
            pick = has & (rng.random(n) < P.RECODE_CHRONIC)
            coded |= pick
            self._diagnose(person[pick], day[pick], visit[pick], _DX[_dx_key(key)])
        minor = ~coded & (rng.random(n) < 0.6)
        choice = rng.choice(3, size=int(minor.sum()), p=[0.45, 0.25, 0.30])
        keys = np.array([_DX["respiratory_infection"], _DX["back_pain"], _DX["checkup"]])
        self._diagnose(person[minor], day[minor], visit[minor], keys[choice])
        self._labs(r, person, day, visit)

    def _labs(self, r: int, person: np.ndarray, day: np.ndarray, visit: np.ndarray) -> None:
        lc, rng = self.lc, self.rng
        n = len(person)
        age = (day - lc.birth[person]) / YEAR
        adult = age >= 18
        y = {k: v[r, person] for k, v in lc.yearly.items()}
        dm = (lc.onset["t2d"][person] <= day) | (lc.onset["t1d"][person] <= day)
        ht = lc.onset["hypertension"][person] <= day
        ckd = lc.onset["ckd"][person] <= day
        statin = _on(lc, "atorvastatin", person, day) | _on(lc, "simvastatin", person, day)
        cvd = (lc.onset["heart_failure"][person] <= day) | statin
        u = rng.random((5, n))
        bp = adult & (u[0] < np.where(dm | ht, 0.6, 0.22))
        sbp = y["sbp"][bp] + rng.normal(0, 7, bp.sum())
        self._measure(person[bp], day[bp], visit[bp], "SBP", np.rint(sbp))
        dbp = 0.5 * sbp + 14 + rng.normal(0, 6, bp.sum())
        self._measure(person[bp], day[bp], visit[bp], "DBP", np.rint(dbp))
        a1c = adult & (u[1] < np.where(dm, 0.55, np.where(age >= 40, 0.05, 0.01)))
        self._measure(
            person[a1c],
            day[a1c],
            visit[a1c],
            "HbA1c",
            np.rint(y["hba1c"][a1c] + rng.normal(0, 1.8, a1c.sum())),
        )
        lip = adult & (u[2] < np.where(dm | cvd, 0.35, np.where(age >= 40, 0.14, 0.02)))
        tc = np.round(y["tc"][lip] + rng.normal(0, 0.25, lip.sum()), 1)
        hdl = np.round(np.maximum(y["hdl"][lip] + rng.normal(0, 0.08, lip.sum()), 0.3), 2)
        tg = np.exp(rng.normal(np.log(1.3), 0.4, lip.sum()))
        ldl = np.round(np.maximum(tc - hdl - tg / 2.2, 0.3), 1)
        for key, value in (("TC", tc), ("HDL", hdl), ("LDL", ldl)):
            self._measure(person[lip], day[lip], visit[lip], key, value)
        cr = adult & (u[3] < np.where(dm | ht | ckd, 0.35, np.where(age >= 40, 0.07, 0.015)))
        crea = creatinine_from_egfr(y["egfr"][cr], age[cr], lc.male[person[cr]])
        self._measure(
            person[cr],
            day[cr],
            visit[cr],
            "creatinine",
            np.rint(crea * np.exp(rng.normal(0, 0.05, cr.sum()))),
        )
        wt = adult & (u[4] < np.where(dm, 0.45, 0.1))
        h = self.height[person[wt]] / 100
        bmi = y["bmi"][wt] + rng.normal(0, 0.3, wt.sum())
        self._measure(person[wt], day[wt], visit[wt], "weight", np.round(bmi * h * h, 1))
        self._measure(person[wt], day[wt], visit[wt], "BMI", np.round(bmi, 1))
        smk = adult & (rng.random(n) < np.where(dm, 0.35, 0.18))
        status = y["smoking"][smk].astype(np.int8)
        self.observations.add(
            person=person[smk], day=day[smk].astype(np.int32), visit=visit[smk], status=status
        )

    def _measure(
        self, person: np.ndarray, day: np.ndarray, visit: np.ndarray, lab: str, value: np.ndarray
    ) -> None:
        self.measurements.add(
            person=person,
            day=day.astype(np.int32),
            visit=visit,
            lab=np.full(len(person), _LAB[lab], np.int8),
            value=value.astype(np.float64),
        )

    def _onsets(self, live: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        """A visit with the diagnosis when a chronic condition starts.

        A condition that began before the person entered the records (moved in, or before the
        record period) is recorded at a first visit within half a year of entry.
        """
        lc = self.lc
        entry = lc.entry[live].astype(np.int64)
        first_visit = np.minimum(entry + self._settle_in[live], lc.exit[live])
        for key in CHRONIC:
            day = lc.onset[key][live].astype(np.int64)
            day = np.where(day < entry, first_visit, day)
            new = (day >= lo) & (day < hi)
            if not new.any():
                continue
            person, d = live[new], day[new]
            inpatient = key == "heart_failure"
            kind = K.VISIT_INPATIENT if inpatient else K.VISIT_OUTPATIENT
            length = (
                self.rng.integers(3, 9, len(person))
                if inpatient
                else np.zeros(len(person), np.int64)
            )
            visit = self._new_visits(person, d, length, kind)
            self._diagnose(person, d, visit, _DX[_dx_key(key)])

    def _hospital(self, live: np.ndarray, age: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        rate = P.HOSPITAL_BASE * np.exp(0.035 * (age - 50))
        stays = self.rng.random(len(live)) < -np.expm1(-rate * (hi - lo) / YEAR)
        person = live[stays]
        day = lo[stays] + (self.rng.random(len(person)) * (hi - lo)[stays]).astype(np.int64)
        visit = self._new_visits(
            person, day, self.rng.integers(1, 8, len(person)), K.VISIT_INPATIENT
        )
        choice = self.rng.choice(3, size=len(person), p=[0.5, 0.3, 0.2])
        keys = np.array([_DX["respiratory_infection"], _DX["back_pain"], _DX["checkup"]])
        self._diagnose(person, day, visit, keys[choice])

    def _dispensings(self, live: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        lc = self.lc
        for i, drug in enumerate(_DRUG_KEYS):
            start = lc.drug_start.get(drug)
            if start is None:
                continue
            s = start[live].astype(np.int64)
            stop = np.minimum(lc.drug_stop[drug][live].astype(np.int64), hi)
            on = (s < stop) & (s < hi) & (stop > lo)
            if not on.any():
                continue
            s, stop_, lo_, who = s[on], stop[on], lo[on], live[on]
            # Dispensings at start + k * DAYS_SUPPLY that fall in [lo, stop).
            first_k = np.maximum(np.ceil((lo_ - s) / P.DAYS_SUPPLY), 0).astype(np.int64)
            last_k = np.ceil((stop_ - s) / P.DAYS_SUPPLY).astype(np.int64)
            count = np.maximum(last_k - first_k, 0)
            person = np.repeat(who, count)
            k = np.repeat(first_k, count) + _repeat_offsets(count)
            day = np.repeat(s, count) + k * P.DAYS_SUPPLY + self.rng.integers(-3, 4, len(person))
            self.drugs.add(
                person=person, day=day.astype(np.int32), drug=np.full(len(person), i, np.int8)
            )

    def _procedure(
        self, person: np.ndarray, day: np.ndarray, visit: np.ndarray | None, key: str
    ) -> None:
        if visit is None:
            visit = np.full(len(person), -1, np.int64)
        self.procedures.add(
            person=person,
            day=day.astype(np.int32),
            visit=visit,
            proc=np.full(len(person), _PROC_KEYS.index(key), np.int8),
        )

    def _events(self) -> None:
        """Hospital stays, diagnoses and procedures at acute events inside the records."""
        lc, rng = self.lc, self.rng
        person, day, kind = lc.events.arrays()
        inside = (
            (day >= lc.entry[person])
            & (day <= lc.exit[person])
            & (day >= lc.record_start)
            & (day <= lc.end)
        )
        person, day, kind = person[inside], day[inside].astype(np.int64), kind[inside]
        names = Events.KINDS
        for i, name in enumerate(names):
            sel = (kind == i) & (name != "cvd_death")
            if not sel.any():
                continue
            p, d = person[sel], day[sel]
            length = rng.integers(*({"mi": (3, 9), "stroke": (5, 16)}.get(name, (2, 8))), len(p))
            visit = self._new_visits(p, d, length, K.VISIT_INPATIENT)
            self._diagnose(p, d, visit, _DX[name])
            if name == "mi":
                pci = rng.random(len(p)) < P.TREAT["pci_after_mi"]
                self._procedure(p[pci], d[pci], visit[pci], "pci")
                cabg = ~pci & (
                    rng.random(len(p)) < P.TREAT["cabg_after_mi"] / (1 - P.TREAT["pci_after_mi"])
                )
                self._procedure(p[cabg], d[cabg] + 7, visit[cabg], "cabg")
            if name == "colorectal_cancer":
                scope = rng.random(len(p)) < 0.9
                self._procedure(p[scope], d[scope], visit[scope], "colonoscopy")

    def _first_cancer_kind(self) -> np.ndarray:
        person, day, kind = self.lc.events.arrays()
        out = np.full(len(self.lc), -1, np.int16)
        cancer = kind >= 3
        order = np.lexsort((-day[cancer], person[cancer]))  # last write wins: earliest day
        out[person[cancer][order]] = kind[cancer][order] - 3
        return out

    # --- tables -------------------------------------------------------------------------

    def tables(self) -> dict[str, pa.Table]:
        ids = self.person_ids
        base = self.chunk * ROWS_PER_CHUNK
        out: dict[str, pa.Table] = {}
        v = self.visits
        vp = v.get("person")
        out["visit_occurrence"] = pa.table(
            {
                "visit_occurrence_id": v.get("visit_occurrence_id"),
                "person_id": ids[vp],
                "visit_concept_id": v.get("visit_concept_id", np.int32),
                "visit_start_date": _date(v.get("visit_start_date")),
                "visit_end_date": _date(v.get("visit_end_date")),
                "visit_type_concept_id": np.full(len(vp), K.TYPE_EHR, np.int32),
                "care_site_id": v.get("care_site_id"),
                "visit_source_value": _dict(
                    v.get("source"), pa.array(["primary care", "inpatient"])
                ),
            }
        )
        c = self.conditions
        cp, dx = c.get("person"), c.get("dx", np.int32)
        n = len(cp)
        out["condition_occurrence"] = pa.table(
            {
                "condition_occurrence_id": base + np.arange(n, dtype=np.int64),
                "person_id": ids[cp],
                "condition_concept_id": _DX_CONCEPTS[dx],
                "condition_start_date": _date(c.get("day")),
                "condition_type_concept_id": np.full(n, K.TYPE_EHR, np.int32),
                "visit_occurrence_id": c.get("visit"),
                "condition_source_value": _dict(dx, _DX_CODES),
                "condition_source_vocabulary": _const("ICD10", n),
                "condition_source_concept_id": np.zeros(n, np.int32),
            }
        )
        m = self.measurements
        mp, lab = m.get("person"), m.get("lab", np.int8)
        n = len(mp)
        out["measurement"] = pa.table(
            {
                "measurement_id": base + np.arange(n, dtype=np.int64),
                "person_id": ids[mp],
                "measurement_concept_id": _LAB_CONCEPTS[lab],
                "measurement_date": _date(m.get("day")),
                "measurement_type_concept_id": np.full(n, K.TYPE_EHR, np.int32),
                "value_as_number": m.get("value", np.float64),
                "value_as_concept_id": np.zeros(n, np.int32),
                "unit_concept_id": _LAB_UNIT_CONCEPTS[lab],
                "unit_source_value": _dict(lab, _LAB_UNITS),
                "range_low": _normal(_LAB_LOW[lab]),
                "range_high": _normal(_LAB_HIGH[lab]),
                "visit_occurrence_id": m.get("visit"),
                "measurement_source_value": _dict(lab, _LAB_CODES),
                "measurement_source_vocabulary": _dict(lab, _LAB_VOCABS),
                "measurement_source_concept_id": np.zeros(n, np.int32),
            }
        )
        o = self.observations
        op, status = o.get("person"), o.get("status", np.int8)
        n = len(op)
        out["observation"] = pa.table(
            {
                "observation_id": base + np.arange(n, dtype=np.int64),
                "person_id": ids[op],
                "observation_concept_id": np.zeros(n, np.int32),
                "observation_date": _date(o.get("day")),
                "observation_type_concept_id": np.full(n, K.TYPE_EHR, np.int32),
                "value_as_string": _dict(status, pa.array([c.label for c in _SMOKING])),
                "visit_occurrence_id": o.get("visit"),
                "observation_source_value": _dict(status, pa.array([c.code for c in _SMOKING])),
                "observation_source_vocabulary": _const("SNOMED", n),
                "observation_source_concept_id": np.zeros(n, np.int32),
            }
        )
        d = self.drugs
        dp, drug = d.get("person"), d.get("drug", np.int8)
        day = d.get("day", np.int32)
        n = len(dp)
        out["drug_exposure"] = pa.table(
            {
                "drug_exposure_id": base + np.arange(n, dtype=np.int64),
                "person_id": ids[dp],
                "drug_concept_id": np.zeros(n, np.int32),
                "drug_exposure_start_date": _date(day),
                "drug_exposure_end_date": _date(day + P.DAYS_SUPPLY - 1),
                "drug_type_concept_id": np.full(n, K.TYPE_DISPENSING, np.int32),
                "quantity": np.full(n, 100.0),
                "days_supply": np.full(n, P.DAYS_SUPPLY, np.int32),
                "drug_source_value": _dict(drug, _DRUG_CODES),
                "drug_source_vocabulary": _const("ATC", n),
                "drug_source_concept_id": np.zeros(n, np.int32),
            }
        )
        pr = self.procedures
        pp, proc = pr.get("person"), pr.get("proc", np.int8)
        visit = pr.get("visit")
        n = len(pp)
        out["procedure_occurrence"] = pa.table(
            {
                "procedure_occurrence_id": base + np.arange(n, dtype=np.int64),
                "person_id": ids[pp],
                "procedure_concept_id": np.zeros(n, np.int32),
                "procedure_date": _date(pr.get("day")),
                "procedure_type_concept_id": np.full(n, K.TYPE_EHR, np.int32),
                "visit_occurrence_id": pa.array(visit, mask=visit < 0),
                "procedure_source_value": _dict(proc, _PROC_CODES),
                "procedure_source_vocabulary": _const("KVA", n),
                "procedure_source_concept_id": np.zeros(n, np.int32),
            }
        )
        out["death"] = self._death_table()
        # Physical layout: events sorted by (code, person, date) so engines skip row groups.
        out["visit_occurrence"] = out["visit_occurrence"].take(
            np.lexsort((v.get("visit_start_date"), vp))
        )
        out["condition_occurrence"] = _sorted(
            out["condition_occurrence"], dx, _DX_CODES, cp, c.get("day")
        )
        out["measurement"] = _sorted(out["measurement"], lab, _LAB_CODES, mp, m.get("day"))
        out["observation"] = _sorted(
            out["observation"], status, pa.array([c.code for c in _SMOKING]), op, o.get("day")
        )
        out["drug_exposure"] = _sorted(out["drug_exposure"], drug, _DRUG_CODES, dp, day)
        out["procedure_occurrence"] = _sorted(
            out["procedure_occurrence"], proc, _PROC_CODES, pp, pr.get("day")
        )
        return out

    def _death_table(self) -> pa.Table:
        lc = self.lc
        who = np.flatnonzero(lc.died)
        cause = lc.death_cause[who]
        names = LifeCourse.CAUSES
        key = np.array(
            [
                {
                    "mi": "mi",
                    "stroke": "stroke",
                    "cvd_death": "cardiac_arrest",
                    "dementia": "dementia",
                    "copd": "copd",
                }.get(names[c], "ill_defined")
                for c in cause
            ],
            dtype=object,
        )
        cancer = cause == names.index("cancer")
        kinds = self._cancer_kind[who]
        key[cancer] = [CANCERS[k] if k >= 0 else "other_cancer" for k in kinds[cancer]]
        codes = [K.CONDITIONS[k] for k in key]
        return pa.table(
            {
                "person_id": self.person_ids[who],
                "death_date": _date(lc.exit[who]),
                "death_type_concept_id": np.full(len(who), 32815, np.int32),
                "cause_concept_id": np.array([c.concept_id for c in codes], np.int32),
                "cause_source_value": pa.array([c.code for c in codes], pa.string()),
                "cause_source_vocabulary": _const("ICD10", len(who)),
            }
        )


def _sorted(
    table: pa.Table, code: np.ndarray, codes: pa.Array, person: np.ndarray, day: np.ndarray
) -> pa.Table:
    """``table`` in (code as text, person, date) order, computed on integer keys."""
    rank = np.argsort(np.argsort(np.array(codes.to_pylist(), dtype=object)))
    return table.take(np.lexsort((day, person, rank[code.astype(np.int64)])))


def _dx_key(condition: str) -> str:
    return "dementia" if condition == "dementia" else condition


def _on(lc: LifeCourse, drug: str, person: np.ndarray, day: np.ndarray) -> np.ndarray:
    return (lc.drug_start[drug][person] <= day) & (lc.drug_stop[drug][person] > day)


def _date(days: np.ndarray) -> pa.Array:
    return pa.array(days.astype(np.int32), pa.int32()).cast(pa.date32())


def creatinine_from_egfr(egfr: np.ndarray, age: np.ndarray, male: np.ndarray) -> np.ndarray:
    """Invert CKD-EPI 2021 (race-free): the plasma creatinine (µmol/L) giving this eGFR."""
    kappa = np.where(male, 0.9, 0.7)
    alpha = np.where(male, -0.302, -0.241)
    sex = np.where(male, 1.0, 1.012)
    base = egfr / (142 * 0.9938**age * sex)
    # Above kappa the exponent is -1.200; below it, alpha.
    ratio = np.where(base < 1, base ** (-1 / 1.2), base ** (1 / alpha))
    return ratio * kappa * 88.4


__all__ = ["NONE", "CareGenerator", "creatinine_from_egfr"]

"""``brygga synth``: generate a whole synthetic region, chunk by chunk, in parallel.

Plan (deterministic for a seed and scale, whatever the number of workers):
1. A pilot simulation measures, per age at the end date, how many simulated people end up
   resident; ages are then weighted so that residents match Sweden's age structure.
2. Each municipality gets ``population x scale`` residents. Slightly more people are simulated;
   each chunk keeps an exact quota of its residents per municipality and thins the people who
   died or moved away by the same fraction, which keeps every rate unbiased.
3. Chunks of ``CHUNK_SIZE`` people are simulated and written as Parquet parts by worker
   processes; each chunk's random numbers come from (seed, chunk), so results do not depend on
   how many workers ran them.
4. Identities go to ``<region>.identities.parquet`` beside the region; a calibration report to
   ``calibration.md`` inside it. Everything is built in a temporary folder and renamed into place.
"""

from __future__ import annotations

__all__ = [
    "CHUNK_SIZE",
    "EVENT_TABLES",
    "GENERATOR_VERSION",
    "ROW_GROUP_SIZE",
    "SynthResult",
    "generate",
    "plan",
    "synthetic_key",
]

import hashlib
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from brygga.errors import InputError
from brygga.privacy.pseudonym import key_configured, load_key, pseudonyms_of_canonical
from brygga.records import codes as K
from brygga.records.store import Region, RegionWriter, identities_path
from brygga.synth import _params as P
from brygga.synth._lifecourse import age_weights, draw_people, realized_survival, simulate
from brygga.synth.care import CareGenerator
from brygga.synth.identity import make_identities, personnummer
from brygga.synth.targets import RegionFacts, region_facts
from brygga.util import atomic_path

CHUNK_SIZE = 40_000
# Row groups of this many rows: small enough that a code's rows span few groups to read.
ROW_GROUP_SIZE = 131_072
GENERATOR_VERSION = 1
EVENT_TABLES = (
    "visit_occurrence",
    "condition_occurrence",
    "drug_exposure",
    "measurement",
    "observation",
    "procedure_occurrence",
    "death",
)


@dataclass
class SynthResult:
    region: Region
    identities: Path
    calibration: list[Any]
    elapsed_s: float
    shortfall: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        within = sum(1 for r in self.calibration if r.ok)
        return {
            "region": self.region.name,
            "path": str(self.region.path),
            "identities": str(self.identities),
            "calibration_report": str(self.region.path / "calibration.md"),
            "row_counts": self.region.row_counts,
            "calibration": {"within": within, "total": len(self.calibration)},
            "elapsed_s": round(self.elapsed_s, 1),
        }


def _validate(scale: float, years: int, seed: int) -> None:
    if not (scale > 0) or not math.isfinite(scale):
        raise InputError(f"--scale must be a positive number, got {scale}")
    if scale > 2:
        raise InputError(f"--scale {scale} is larger than supported (at most 2.0)")
    if not 1 <= years <= 60:
        raise InputError(f"--years must be between 1 and 60, got {years}")
    if seed < 0:
        raise InputError(f"--seed must be zero or positive, got {seed}")


@dataclass(frozen=True)
class _Plan:
    facts: RegionFacts
    seed: int
    years: int
    end_date: str
    labels: np.ndarray  # municipality index of each simulated person
    male: np.ndarray
    birth: np.ndarray  # day number
    personnummer: np.ndarray  # 'YYYYMMDD-NNNC', unique
    quotas: np.ndarray  # (chunks, municipalities) residents to keep
    key: bytes  # pseudonym key: person_id = HMAC(key, personnummer)

    @property
    def chunks(self) -> int:
        return self.quotas.shape[0]

    def job(self, c: int) -> _Job:
        part = slice(c * CHUNK_SIZE, (c + 1) * CHUNK_SIZE)
        return _Job(
            self.facts,
            self.seed,
            self.years,
            self.end_date,
            c,
            self.labels[part],
            self.male[part],
            self.birth[part],
            self.personnummer[part],
            self.quotas[c],
            self.key,
        )


@dataclass(frozen=True)
class _Job:
    """What one worker needs for one chunk (only that chunk's slice of the plan)."""

    facts: RegionFacts
    seed: int
    years: int
    end_date: str
    chunk: int
    labels: np.ndarray
    male: np.ndarray
    birth: np.ndarray
    personnummer: np.ndarray
    quotas: np.ndarray
    key: bytes


def plan(
    facts: RegionFacts, scale: float, seed: int, years: int, end_date: str, key: bytes
) -> _Plan:
    deprivation = np.array([m.deprivation for m in facts.municipalities])
    pops = np.array([m.population for m in facts.municipalities], float)
    pilot_rng = np.random.default_rng([seed, 0xA6E])
    pilot_muni = pilot_rng.choice(len(pops), size=P.PILOT_SIZE, p=pops / pops.sum())
    uniform = np.full(105, 1 / 105)
    pilot_male, pilot_birth = draw_people(pilot_rng, P.PILOT_SIZE, uniform, end_date)
    pilot = simulate(pilot_rng, pilot_muni, pilot_male, pilot_birth, deprivation, years, end_date)
    survival = realized_survival(pilot)
    weights = age_weights(survival)
    share = float((weights * survival).sum())
    targets = np.rint(pops * scale).astype(np.int64)
    # Margin for the chance that fewer residents than planned survive: a few binomial SDs.
    simulated = np.ceil((targets / share) * P.OVERSAMPLE + 4 * np.sqrt(targets / share)).astype(
        np.int64
    )
    labels = np.repeat(np.arange(len(pops)), simulated)
    people_rng = np.random.default_rng([seed, 0x5EED])
    people_rng.shuffle(labels)
    male, birth = draw_people(people_rng, len(labels), weights, end_date)
    numbers = personnummer(birth, male, people_rng)
    n_chunks = max(1, math.ceil(len(labels) / CHUNK_SIZE))
    per_chunk = np.zeros((n_chunks, len(pops)), np.int64)
    for c in range(n_chunks):
        per_chunk[c] = np.bincount(
            labels[c * CHUNK_SIZE : (c + 1) * CHUNK_SIZE], minlength=len(pops)
        )
    quotas = np.zeros_like(per_chunk)
    for m in range(len(pops)):
        quotas[:, m] = _allocate(targets[m], per_chunk[:, m])
    return _Plan(facts, seed, years, end_date, labels, male, birth, numbers, quotas, key)


def synthetic_key(seed: int) -> bytes:
    """The pseudonym key of a synthetic region when none is configured: derived from the
    seed, so the same seed gives the same ids. Synthetic identities protect nobody; a real
    deployment configures its own secret (docs/privacy.md)."""
    return hashlib.sha256(f"brygga synthetic region, seed {seed}".encode()).hexdigest().encode()


def _allocate(total: int, sizes: np.ndarray) -> np.ndarray:
    """Split ``total`` over chunks in proportion to ``sizes`` (largest remainder)."""
    if sizes.sum() == 0:
        return np.zeros_like(sizes)
    exact = total * sizes / sizes.sum()
    out = np.floor(exact).astype(np.int64)
    rest = int(total - out.sum())
    if rest:
        out[np.argsort(-(exact - out), kind="stable")[:rest]] += 1
    return out


def generate(
    *,
    region: str,
    out: Path | str,
    scale: float = 0.05,
    seed: int = 1,
    years: int = 30,
    workers: int | None = None,
    force: bool = False,
    progress: bool = False,
    end_date: str = P.END_DATE,
) -> SynthResult:
    started = time.perf_counter()
    facts = region_facts(region)
    _validate(scale, years, seed)
    out = Path(out)
    with RegionWriter(out, force=force) as writer:
        configured = key_configured()
        key = load_key() if configured else synthetic_key(seed)
        the_plan = plan(facts, scale, seed, years, end_date, key)
        results = _run_chunks(the_plan, writer.tmp, workers, progress)
        for stats in results:
            for table, rows in stats["rows"].items():
                writer.record_rows(table, rows)
        writer.write("location", _locations(facts))
        writer.write("care_site", _care_sites(facts)[0])
        ident = pa.concat_tables([s["identity_input"] for s in results])
        identity_table = make_identities(
            ident["person_id"].to_numpy(),
            ident["personnummer"].to_numpy(zero_copy_only=False).astype(str),
            ident["male"].to_numpy(),
            ident["municipality"].to_numpy(),
            facts,
            np.random.default_rng([seed, 0x1D]),
        )
        shortfall = int(sum(s["shortfall"] for s in results))
        with atomic_path(identities_path(out)) as tmp:
            pq.write_table(identity_table, tmp, compression="zstd")
            region_obj = writer.commit(
                {
                    "region": facts.name,
                    "region_key": facts.key,
                    "source": "synthetic",
                    "seed": seed,
                    "scale": scale,
                    "years": years,
                    "period": {
                        "start": str(np.datetime64(int(results[0]["record_start"]), "D")),
                        "end": end_date,
                    },
                    "generator_version": GENERATOR_VERSION,
                    "chunk_size": CHUNK_SIZE,
                    "identities": identities_path(out).name,
                    "pseudonym_key": "configured" if configured else "derived from the seed",
                }
            )
    from brygga.synth.calibration import write_report

    rows = write_report(region_obj)
    return SynthResult(
        region_obj, identities_path(out), rows, time.perf_counter() - started, shortfall
    )


def _run_chunks(
    the_plan: _Plan, tmp: Path, workers: int | None, progress: bool
) -> list[dict[str, Any]]:
    jobs = [(the_plan.job(c), str(tmp)) for c in range(the_plan.chunks)]
    workers = workers or os.cpu_count() or 1
    workers = min(workers, len(jobs))
    results: list[dict[str, Any]] = [{}] * len(jobs)
    bar = _progress(progress, len(jobs))
    with bar as (advance):
        if workers == 1:
            for job in jobs:
                results[job[0].chunk] = _chunk(*job)
                advance()
        else:
            ctx = get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = {pool.submit(_chunk, *job): job[0].chunk for job in jobs}
                from concurrent.futures import as_completed

                for f in as_completed(futures):
                    results[futures[f]] = f.result()
                    advance()
    return results


class _progress:
    """A rich progress bar over chunks, or nothing."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total = enabled, total

    def __enter__(self):
        if not self.enabled:
            return lambda: None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self._bar.__enter__()
        task = self._bar.add_task("Simulating people and care", total=self.total)
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._bar.__exit__(*exc)


def _chunk(job: _Job, tmp: str) -> dict[str, Any]:
    """Simulate, thin and write one chunk; return row counts and identity inputs."""
    facts, c = job.facts, job.chunk
    rng = np.random.default_rng([job.seed, c])
    deprivation = np.array([m.deprivation for m in facts.municipalities])
    lc = simulate(rng, job.labels, job.male, job.birth, deprivation, job.years, job.end_date)
    keep, shortfall = _thin(lc, job.quotas, rng)
    numbers = job.personnummer[keep]
    person_ids = pseudonyms_of_canonical(np.char.replace(numbers, "-", "").tolist(), job.key)
    lc = lc.take(keep)
    primary, hospital_of = _care_sites(facts)[1:]
    care = CareGenerator(lc, rng, c, person_ids, primary, hospital_of)
    care.generate()
    tables = care.tables()
    tables["person"] = _persons(lc, person_ids, care.listed_site, facts)
    tables["observation_period"] = pa.table(
        {
            "observation_period_id": person_ids,
            "person_id": person_ids,
            "observation_period_start_date": _date(lc.entry),
            "observation_period_end_date": _date(lc.exit),
            "period_type_concept_id": np.full(len(lc), K.TYPE_EHR, np.int32),
        }
    )
    # Cell Key Method record keys (privacy/cellkey.py); drawn last so nothing else changes.
    tables["person_key"] = pa.table({"person_id": person_ids, "record_key": rng.random(len(lc))})
    rows = {}
    for name, table in tables.items():
        RegionWriter.write_part(Path(tmp), name, c, table, row_group_size=ROW_GROUP_SIZE)
        rows[name] = table.num_rows
    identity_input = pa.table(
        {
            "person_id": person_ids,
            "personnummer": numbers,
            "male": lc.male,
            "municipality": lc.municipality.astype(np.int16),
        }
    )
    return {
        "rows": rows,
        "identity_input": identity_input,
        "shortfall": shortfall,
        "record_start": lc.record_start,
    }


def _thin(lc: Any, quotas: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Keep exactly ``quotas[m]`` residents per municipality and thin the others alike."""
    resident = (lc.exit >= lc.end) & ~lc.died & (lc.entry <= lc.end)
    keep = np.zeros(len(lc), bool)
    shortfall = 0
    for m, quota in enumerate(quotas):
        here = lc.municipality == m
        res = np.flatnonzero(here & resident)
        gone = np.flatnonzero(here & ~resident & (lc.entry <= lc.exit))
        if len(res) <= quota:
            keep[res] = True
            keep[gone] = True
            shortfall += int(quota - len(res))
            continue
        keep[rng.choice(res, size=int(quota), replace=False)] = True
        keep[gone[rng.random(len(gone)) < quota / len(res)]] = True
    return keep, shortfall


def _date(days: np.ndarray) -> pa.Array:
    return pa.array(days.astype(np.int32), pa.int32()).cast(pa.date32())


def _persons(
    lc: Any, person_ids: np.ndarray, listed_site: np.ndarray, facts: RegionFacts
) -> pa.Table:
    dates = lc.birth.astype("datetime64[D]")
    year = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    month = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    codes = pa.array([m.code for m in facts.municipalities])
    n = len(lc)
    return pa.table(
        {
            "person_id": person_ids,
            "gender_concept_id": np.where(lc.male, K.GENDER_MALE, K.GENDER_FEMALE).astype(np.int32),
            "year_of_birth": year.astype(np.int32),
            "month_of_birth": month.astype(np.int32),
            "day_of_birth": day.astype(np.int32),
            "race_concept_id": np.zeros(n, np.int32),
            "ethnicity_concept_id": np.zeros(n, np.int32),
            "location_id": lc.municipality.astype(np.int64) + 1,
            "care_site_id": listed_site,
            "gender_source_value": pa.DictionaryArray.from_arrays(
                pa.array(lc.male.astype(np.int32)), pa.array(["F", "M"])
            ),
            "municipality_code": pa.DictionaryArray.from_arrays(
                pa.array(lc.municipality.astype(np.int32)), codes
            ),
            "deprivation_quintile": lc.deprivation.astype(np.int8),
        }
    )


def _locations(facts: RegionFacts) -> pa.Table:
    n = len(facts.municipalities)
    return pa.table(
        {
            "location_id": np.arange(1, n + 1, dtype=np.int64),
            "city": [m.name for m in facts.municipalities],
            "county": [facts.county] * n,
            "location_source_value": [m.code for m in facts.municipalities],
            "country_source_value": ["SE"] * n,
        }
    )


def _care_sites(facts: RegionFacts) -> tuple[pa.Table, list[np.ndarray], np.ndarray]:
    """Primary-care centres (one per about 12,000 residents) and hospitals, real scale."""
    ids, names, loc, kind, primary = [], [], [], [], []
    next_id = 1
    for i, m in enumerate(facts.municipalities):
        count = max(1, round(m.population / 12_000))
        here = []
        for k in range(count):
            ids.append(next_id)
            names.append(
                f"Vårdcentralen {m.name} {k + 1}" if count > 1 else f"Vårdcentralen {m.name}"
            )
            loc.append(i + 1)
            kind.append("primary care")
            here.append(next_id)
            next_id += 1
        primary.append(np.array(here, np.int64))
    hospital_ids = {}
    for code, name in facts.hospitals:
        ids.append(next_id)
        names.append(name)
        loc.append(next(i for i, m in enumerate(facts.municipalities) if m.code == code) + 1)
        kind.append("hospital")
        hospital_ids.setdefault(code, next_id)
        next_id += 1
    # Each municipality's hospital: its own, else the first (the largest city's) hospital.
    default = hospital_ids[facts.hospitals[0][0]]
    hospital_of = np.array(
        [hospital_ids.get(m.code, default) for m in facts.municipalities], np.int64
    )
    table = pa.table(
        {
            "care_site_id": np.array(ids, np.int64),
            "care_site_name": names,
            "place_of_service_concept_id": np.zeros(len(ids), np.int32),
            "location_id": np.array(loc, np.int64),
            "care_site_source_value": [f"SE{facts.key[:2].upper()}{i:05d}" for i in ids],
            "place_of_service_source_value": kind,
        }
    )
    return table, primary, hospital_of

"""Feasibility: how many people meet the criteria, how they fall out, and who they are by group.

``feasibility()`` returns counts that have passed the disclosure policy (the only form in which
counts leave the platform). ``eligible_persons()`` returns pseudonymous person ids for internal
use by matching and prevention; the CLI never prints them.
"""

from __future__ import annotations

__all__ = [
    "SEXES",
    "FeasibilityResult",
    "asked_feasibility",
    "disclose",
    "disclose_noisy",
    "eligible_persons",
    "feasibility",
    "group_counts",
    "index_date_for",
    "table",
    "unknown_codes",
]

import json
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brygga import clock
from brygga.cohort.compile import Compiler
from brygga.cohort.criteria import (
    GROUP_KINDS,
    OMOP,
    Criteria,
    EventSpec,
    rule_body,
    rule_kind,
)
from brygga.cohort.engine import Evaluation
from brygga.cohort.engines import IbisEngine, engine_for
from brygga.db import direct
from brygga.db.migrate import ensure_current
from brygga.errors import InputError
from brygga.privacy.cellkey import FeasibilityKeys, cell_key
from brygga.privacy.disclosure import DisclosurePolicy, region_policy
from brygga.privacy.gate import CountTable, Line, single
from brygga.privacy.noise import NoisyCounts, noisy_request
from brygga.privacy.questions import Asker, QuestionGuard
from brygga.records import schema
from brygga.records.optimize import PERSON_INDEX, codes_table, first_table
from brygga.records.store import Region
from brygga.util import atomic_write_text, lazy_module

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# Imported on first use, for start-up time: on SQLite the question's record is written through
# ``db.direct`` (sqlite3); SQLAlchemy's sessions are for other databases.
db_session = lazy_module("brygga.db.session")

SEXES = ("female", "male")


@dataclass(frozen=True)
class FeasibilityResult:
    name: str
    region: str
    index_date: date
    engine: str
    raw: bool
    disclosure: str
    count: dict[str, Any]
    attrition: list[dict[str, Any]]
    breakdowns: dict[str, dict[str, dict[str, Any]]]
    elapsed_ms: int
    fingerprint: str
    warnings: list[str] = field(default_factory=list)
    noise: dict[str, Any] | None = None  # mechanism, epsilon, error95 when counts are noisy
    # What the reader should know about how the question was read (a defaulted index date).
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "region": self.region,
            "index_date": self.index_date.isoformat(),
            "count": self.count,
            "raw": self.raw,
            "disclosure": self.disclosure,
            "attrition": self.attrition,
            "breakdowns": self.breakdowns,
            "engine": self.engine,
            "elapsed_ms": self.elapsed_ms,
            "fingerprint": self.fingerprint,
            "warnings": self.warnings,
            "notes": self.notes,
        } | ({"noise": self.noise} if self.noise else {})


def _region(region: Region | str | Path) -> Region:
    return region if isinstance(region, Region) else Region.open(region)


def index_date_for(
    criteria: Criteria, region: Region, given: date | None = None
) -> tuple[date, str | None]:
    """The index date of a question and, when it was not asked for, a note saying which day
    was chosen: the one given, else the criteria's, else today, or the region's last day
    when today is past the period its records cover (after it nobody is under observation,
    so every count would be 0)."""
    if given is not None or criteria.index_date is not None or criteria.entry is not None:
        # With ``entry`` each person has their own date; a given one is refused (strict).
        return criteria.effective_index_date(given, strict=True), None
    today = clock.today()
    day = region.records_date(today)
    if day == today:
        return day, None
    return day, (
        f"index date {day.isoformat()}: the region's records end on that day, before today "
        f"({today.isoformat()}); give an index date (--index-date, or index_date in the "
        "criteria) to ask about another day"
    )


def feasibility(
    criteria: Criteria,
    region: Region | str | Path,
    *,
    engine: str = "duckdb",
    index_date: date | None = None,
    raw: bool = False,
    noise: str | None = None,
    user: str | None = None,
    noisy: NoisyCounts | None = None,
    session: Session | None = None,
    policy: DisclosurePolicy | None = None,
) -> FeasibilityResult:
    """Count, attrition and breakdowns, every count disclosed under ``policy``, or noisy
    (``noise``: laplace or gaussian, privacy/noise.py; rate-limited per ``user``).

    ``policy``: the one the platform chose (``platform.Brygga.policy``); without one (a
    library caller, the tests) the region's policy from the settings, ``raw`` allowed only on
    a synthetic region. ``noisy``: noise for a question the question guard already admitted
    (no second rate limit); ``session``: the caller's write transaction for the cache of
    noisy answers."""
    region = _region(region)
    if policy is None:
        policy = region_policy(region, raw=raw)  # refuse --raw before any work
    raw = policy.raw
    if noisy is None:
        noisy = noisy_request(noise, raw=raw, user=user)
    elif raw:
        raise InputError("exact (raw) and noisy counts cannot be combined")
    effective, note = index_date_for(criteria, region, index_date)
    started = time.perf_counter()
    runner = engine_for(engine, region)  # shared: kept rule sets serve later questions
    evaluation = runner.evaluate(criteria, effective)
    names = region.code_names(criteria.codes())
    if names:  # the attrition table names the codes (an imported region: its concept table)
        labels = [evaluation.steps[0][0]] + [d for _, d, _ in criteria.steps(names)]
        steps = [(label, n) for label, (_, n) in zip(labels, evaluation.steps, strict=True)]
        evaluation = replace(evaluation, steps=steps)
    keys = None
    if policy.needs_record_keys and noisy is None:
        keys = runner.keys(criteria, effective)  # DuckDB: sums over the kept bitmaps
    elapsed_ms = round((time.perf_counter() - started) * 1000)
    warnings = []
    if criteria.whole_region and criteria.entry is None:
        warnings.append(
            "no demographics, include or exclude rules: this is the whole region (everyone "
            f"alive and under observation on {effective.isoformat()})"
        )
    if evaluation.steps[0][1] == 0 and criteria.entry is not None:
        warnings.append(
            "nobody entered: no one has the entry event in the period while under observation"
        )
    elif evaluation.steps[0][1] == 0:
        period = region.manifest.get("period") or {}
        covered = (
            f"the region's records cover {period['start']} to {period['end']}"
            if "start" in period and "end" in period
            else "is the index date inside the period the region's records cover?"
        )
        warnings.append(
            f"nobody is alive and under observation on {effective.isoformat()}; {covered}"
        )
    warnings += unknown_codes(criteria, runner, policy, region.row_counts)
    fingerprint = criteria.fingerprint(effective)
    if noisy is None:
        count, attrition, by_group = disclose(evaluation, policy, keys)
    else:
        count, attrition, by_group = disclose_noisy(evaluation, noisy, fingerprint, session)
    return FeasibilityResult(
        name=criteria.name,
        region=region.name,
        index_date=effective,
        engine=engine,
        raw=policy.raw,
        disclosure=policy.description if noisy is None else noisy.description,
        count=count,
        attrition=attrition,
        breakdowns=by_group,
        elapsed_ms=elapsed_ms,
        fingerprint=fingerprint,
        warnings=warnings,
        noise=noisy.info() if noisy else None,
        notes=[note] if note else [],
    )


def _coded_specs(criteria: Criteria) -> list[EventSpec]:
    """Every rule with codes (the entry event included), groups walked."""
    found: list[EventSpec] = [criteria.entry.spec] if criteria.entry is not None else []
    stack = [*criteria.include, *criteria.exclude]
    while stack:
        rule = stack.pop(0)  # in document order
        kind, body = rule_kind(rule), rule_body(rule)
        if kind == "at_least":
            stack += body.of
        elif kind in GROUP_KINDS:
            stack += body
        elif isinstance(body, EventSpec):
            found.append(body)
    return found


def unknown_codes(
    criteria: Criteria,
    runner: Any,
    policy: DisclosurePolicy,
    rows: dict[str, int] | None = None,
) -> list[str]:
    """Warnings naming the codes (other than OMOP concepts) that none or too few of the
    region's people have to show, one or two queries per table: a mistyped code otherwise just
    counts nobody. Whether a code is found is itself a count of people (found: at least one
    has it), so each code's number of people passes the release gate (``gate.single``) and
    the warning says only what the disclosed value says: nothing when it is shown, "none or
    too few to show" when it is suppressed or 0 (a small group and an empty one read alike).
    Exact counts (a synthetic region's raw policy) may say "no record". (The reference engine,
    for small test regions, is not asked.)

    The counts are kept beside the optimized database's rule bitmaps (``_kept_counts``):
    without them a new process would open DuckDB (and load Ibis) for this check alone. A code
    no process has counted is counted from the code arrays when the database has them: exactly
    when they hold all the table's ``rows`` (the manifest's counts), else a lower bound like the
    table of codes' (a code whose bound is not shown is then counted by DuckDB)."""
    if not isinstance(runner, IbisEngine):
        return []
    wanted: dict[str, dict[tuple[str, str], None]] = {}
    for spec in _coded_specs(criteria):
        for pair in (*spec.codeset, *spec.exclude_codeset):
            if pair[0] != OMOP:
                wanted.setdefault(spec.TABLE, {})[pair] = None
    stored = getattr(runner, "stored", None)  # an optimized database's folder (``stored.py``)
    kept = _kept_counts(stored)  # "table|vocabulary|code" -> [people, exact]
    before = dict(kept)
    rows = rows or {}
    warnings = []
    compiler: Compiler | None = None
    for name, found in wanted.items():
        pairs = list(found)
        table_def = schema.table(name)
        keys = {pair: f"{name}|{pair[0]}|{pair[1]}" for pair in pairs}
        new = [pair for pair in pairs if keys[pair] not in kept]
        arrays = getattr(runner, "codes", None)  # the code arrays (``codearrays.py``)
        found_people = arrays.people(name, new, rows.get(name)) if arrays and new else None
        if found_people is not None:  # without opening DuckDB and loading Ibis
            people_of, exact = found_people
            for pair, n in zip(new, people_of, strict=True):
                kept[keys[pair]] = [n, exact]
            new = []
        # (Tables are opened only when something must be counted: opening one opens DuckDB.)
        codes = runner.table(codes_table(name)) if new else None
        if codes is not None:  # an optimized region: people per distinct code
            compiler = compiler or Compiler(runner.tables, criteria.effective_index_date())
            row = _aggregate(runner, codes, "persons", "max", table_def, compiler, new)
            for i, pair in enumerate(new):
                kept[keys[pair]] = [int(row[f"c{i}"] or 0), False]
        # A code row's people are a lower bound of the people a code (with its sub-codes) has:
        # count exactly only the codes whose lower bound the policy would not show.
        bounds = {pair: kept.get(keys[pair], [0, False]) for pair in pairs}
        doubtful = [
            pair
            for pair, (people, exact) in bounds.items()
            if not exact and not _shown(policy.apply(people))
        ]
        if doubtful:
            compiler = compiler or Compiler(runner.tables, criteria.effective_index_date())
            people, person = runner.table(first_table(name)), PERSON_INDEX
            if people is None:
                people, person = runner.table(name), "person_id"
            row = _aggregate(runner, people, person, "nunique", table_def, compiler, doubtful)
            for i, pair in enumerate(doubtful):
                kept[keys[pair]] = [int(row[f"c{i}"] or 0), True]
        for vocabulary, code in pairs:
            people, exact = kept[keys[(vocabulary, code)]]
            if not exact:
                continue  # its lower bound is shown: the code is found
            disclosed = single(policy, people)
            if policy.raw and disclosed["value"] == 0:
                warnings.append(
                    f"no record in the region's {name} has the {vocabulary} code {code}: "
                    "is it written as the region's records write it?"
                )
            elif not _shown(disclosed):
                warnings.append(
                    f"none or too few people to show have the {vocabulary} code {code} in the "
                    f"region's {name}: is it written as the region's records write it?"
                )
    if kept != before:
        _keep_counts(stored, kept)
    return warnings


def _counts_file(stored: Any) -> Path | None:
    # Beside the kept rule bitmaps: the folder belongs to one optimized database (it cannot be
    # stale), and the name carries the engine's source hash (what a code means may change).
    if stored is None:
        return None
    return stored.folder / f"codes-{stored.semantics}.json"


def _kept_counts(stored: Any) -> dict[str, list[Any]]:
    """Earlier processes' people per code: ``table|vocabulary|code`` -> [people, exact] (not
    exact: a lower bound, from the optimized database's table of codes)."""
    path = _counts_file(stored)
    if path is None:
        return {}
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(kept, dict):
        return {}
    return {
        k: [v[0], v[1]]
        for k, v in kept.items()
        if isinstance(v, list) and len(v) == 2 and isinstance(v[0], int) and isinstance(v[1], bool)
    }


def _keep_counts(stored: Any, kept: dict[str, list[Any]]) -> None:
    """Keep the counts for later processes; quietly not on a read-only region folder."""
    path = _counts_file(stored)
    if path is None:
        return
    try:
        atomic_write_text(path, json.dumps(_kept_counts(stored) | kept, sort_keys=True))
    except OSError:
        return


def _shown(disclosed: dict[str, Any]) -> bool:
    return disclosed["value"] not in (None, 0)


def _aggregate(
    runner: Any,
    t: Any,
    column: str,
    how: str,
    table_def: schema.Table,
    compiler: Compiler,
    pairs: list[tuple[str, str]],
) -> dict[str, Any]:
    """One row: ``column``'s ``how`` (max, nunique) over the rows of each code, as c0, c1 ...
    The rows of any of the codes are selected first: the tables are sorted by code, so the
    scan skips the rest (an aggregate's own filter would read every row)."""
    rows = t.filter(compiler.code_predicate(t, table_def, tuple(pairs)).fill_null(False))
    reduce = getattr(rows[column], how)
    return runner.to_arrow(
        rows.aggregate(
            **{
                f"c{i}": reduce(
                    where=compiler.code_predicate(rows, table_def, (pair,)).fill_null(False)
                )
                for i, pair in enumerate(pairs)
            }
        )
    ).to_pylist()[0]


def asked_feasibility(
    criteria: Criteria,
    region: Region | str | Path,
    *,
    asker: Asker,
    guard: QuestionGuard | None = None,
    url: str | None = None,
    index_date: date | None = None,
    **options: Any,
) -> FeasibilityResult:
    """``feasibility`` for someone outside the web (``brygga feasibility``), through the
    question guard: budgets, rate limit and sweep refusal on a region that is not synthetic,
    an audit record always (security property 7). The data owner's questions on a local
    synthetic region are only audited. Two short transactions, none held while counting."""
    region = _region(region)
    guard = guard or QuestionGuard(enforce=not region.synthetic)
    url = ensure_current(url)
    effective, note = index_date_for(criteria, region, index_date)
    with _transaction(url) as s:
        ticket = guard.admit(s, asker, criteria, effective)
    result = feasibility(criteria, region, index_date=effective, **options)
    with _transaction(url) as s:
        guard.answered(s, ticket, result.count, region=result.region)
    return replace(result, notes=[note]) if note else result


def _transaction(url: str) -> AbstractContextManager[Any]:
    """A write transaction for the question guard: ``sqlite3`` on a SQLite file (a new
    process answers without loading SQLAlchemy), an ORM session otherwise."""
    if direct.sqlite_file(url) is not None:
        return direct.write_transaction(url)
    return db_session.write_session(url)


def group_counts(cells: dict[tuple[str, int, str | None], int]) -> dict[str, dict[str, int]]:
    """Eligible people (or any per-cell sums) by sex, 10-year age band and municipality."""
    sex: dict[str, int] = dict.fromkeys(SEXES, 0)
    bands: dict[int, int] = {}
    municipalities: dict[str, int] = {}
    for (s, band, municipality), n in cells.items():
        sex[s] = sex.get(s, 0) + n
        bands[band] = bands.get(band, 0) + n
        key = municipality or "unknown"
        municipalities[key] = municipalities.get(key, 0) + n
    return {
        "sex": sex,
        "age_band": {f"{b}-{b + 9}": bands[b] for b in sorted(bands)},
        "municipality": {k: municipalities[k] for k in sorted(municipalities)},
    }


def table(
    evaluation: Evaluation,
) -> tuple[dict[Any, int], list[Line], list[Any], dict[str, dict[str, int]]]:
    """The feasibility answer as one table: cells ``("step", i)``, ``(dimension, group)`` and
    the unpublished ``("removed", i)``, with the lines that tie them together (each breakdown
    adds up to the count; step i-1 = step i + the people rule i removed)."""
    last = len(evaluation.steps) - 1
    groups = group_counts(evaluation.cells)
    counts: dict[Any, int] = {("step", i): n for i, (_, n) in enumerate(evaluation.steps)}
    counts |= {(dim, k): n for dim, cells in groups.items() for k, n in cells.items()}
    lines = [Line(("step", last), tuple((dim, k) for k in cells)) for dim, cells in groups.items()]
    removed = [("removed", i) for i in range(1, last + 1)]
    for i in range(1, last + 1):
        counts[("removed", i)] = evaluation.steps[i - 1][1] - evaluation.steps[i][1]
        lines.append(Line(("step", i - 1), (("step", i), ("removed", i))))
    return counts, lines, removed, groups


def disclose(
    evaluation: Evaluation, policy: DisclosurePolicy, keys: FeasibilityKeys | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, dict[str, dict[str, Any]]]]:
    """Count, attrition and breakdowns through the policy, as one table: each breakdown adds
    up to the count, so a suppressed group is protected from subtraction (secondary
    suppression). So is the number of people each rule removes (the difference of two
    consecutive steps): it is never shown, and a small one is protected like a suppressed
    cell. With the cell key method, ``keys`` gives every cell its key."""
    counts, lines, removed, groups = table(evaluation)
    last = len(evaluation.steps) - 1
    cell_keys: dict[Any, float] = {}
    if keys is not None:
        cell_keys = {("step", i): cell_key(k) for i, k in enumerate(keys.steps)}
        for dim, cells in group_counts(keys.cells).items():
            cell_keys |= {(dim, k): cell_key(units) for k, units in cells.items()}
    disclosed = release(policy, counts, lines, cell_keys, removed, keep=("step", last))
    attrition = [
        {"step": step, "count": disclosed[("step", i)]}
        for i, (step, _) in enumerate(evaluation.steps)
    ]
    by_group = {dim: {k: disclosed[(dim, k)] for k in cells} for dim, cells in groups.items()}
    return disclosed[("step", last)], attrition, by_group


def disclose_noisy(
    evaluation: Evaluation,
    noisy: NoisyCounts,
    fingerprint: str,
    session: Session | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, dict[str, dict[str, Any]]]]:
    """Every published count with its own cached noise, then secondary suppression over the
    same table as ``disclose`` (a noisy breakdown must not give away a suppressed group by
    subtraction either)."""
    counts, lines, removed, groups = table(evaluation)
    last = len(evaluation.steps) - 1
    published = {cell: n for cell, n in counts.items() if cell[0] != "removed"}
    # Cache keys as before this table existed ("step:0", "sex:female"): cached answers stay.
    names = {cell: f"{cell[0]}:{cell[1]}" for cell in published}
    values = noisy.values(fingerprint, {names[c]: n for c, n in published.items()}, session)
    noisy_values = {cell: float(values[names[cell]]) for cell in published}
    shown = release(noisy.policy(), counts, lines, noisy_values, removed, keep=("step", last))
    attrition = [
        {"step": step, "count": shown[("step", i)]} for i, (step, _) in enumerate(evaluation.steps)
    ]
    by_group = {dim: {k: shown[(dim, k)] for k in cells} for dim, cells in groups.items()}
    return shown[("step", last)], attrition, by_group


def release(
    policy: DisclosurePolicy,
    counts: dict[Any, int],
    lines: list[Line],
    keys: dict[Any, float],
    hidden: list[Any],
    *,
    keep: Any,
) -> dict[Any, dict[str, Any]]:
    """The feasibility table through the release gate (``privacy.gate``)."""
    table = CountTable(policy)
    for cell, count in counts.items():
        (table.hide if cell in hidden else table.add)(cell, count, keys.get(cell))
    table.lines.extend(lines)  # built from the evaluation's own steps: true by construction
    return table.release(keep=[keep])


def eligible_persons(
    criteria: Criteria,
    region: Region | str | Path,
    *,
    engine: str = "duckdb",
    index_date: date | None = None,
) -> list[int]:
    """Pseudonymous ids of eligible people, sorted. Internal use only: never print them."""
    region = _region(region)
    runner = engine_for(engine, region)
    return runner.persons(criteria, index_date_for(criteria, region, index_date)[0])

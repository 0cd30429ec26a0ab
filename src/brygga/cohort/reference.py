"""The reference evaluator: the executable specification of the criteria language.

Plain Python over rows (lists of dicts), written for clarity rather than speed: each rule is a
function from the region's rows to a set of person ids. The Ibis engines (``compile.py``) must
agree with it on every spec test and on randomly generated criteria and regions. Use it on small
regions only (tests, documentation examples).
"""

from __future__ import annotations

__all__ = [
    "ReferenceEngine",
    "Row",
    "age_at",
    "at_least_dates",
    "in_window",
    "prefix_holds",
    "sex_label",
]

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from brygga.cohort.criteria import (
    DEFAULT_SUPPLY_DAYS,
    ERA_GAP_DAYS,
    OMOP,
    SEX_CONCEPTS,
    Criteria,
    DeathSpec,
    Demographics,
    DrugSpec,
    Entry,
    EventSpec,
    Model,
    ValuedSpec,
    VisitSpec,
    rule_body,
    rule_kind,
    window_bounds,
)
from brygga.cohort.engine import Evaluation, FeasibilityKeys
from brygga.cohort.population import step_description
from brygga.errors import InputError
from brygga.records import codes as codebook
from brygga.records import schema
from brygga.records.store import Region

Row = dict[str, Any]


class ReferenceEngine:
    """Evaluates criteria over a region read wholly into memory."""

    name = "reference"

    def __init__(self, tables: dict[str, list[Row]]) -> None:
        self.tables = tables

    @classmethod
    def from_region(cls, region: Region) -> ReferenceEngine:
        return cls({name: region.read_table(name).to_pylist() for name in region.tables()})

    def evaluate(self, criteria: Criteria, index_date: date) -> Evaluation:
        population, day = self.counted(criteria, index_date)
        steps = [(step_description(index_date, criteria.entry), len(population))]
        remaining = {
            p
            for p, row in population.items()
            if self.demographics_hold(row, criteria.demographics, day[p])
        }
        steps.append((criteria.demographics.describe(), len(remaining)))
        for kind, description, rule in criteria.steps()[1:]:
            assert rule is not None
            matched = self.rule_on(rule, day)
            remaining = remaining & matched if kind == "include" else remaining - matched
            steps.append((description, len(remaining)))
        cells: Counter[tuple[str, int, str | None]] = Counter()
        for person_id in remaining:
            row = population[person_id]
            age = age_at(row, day[person_id])
            cells[
                (sex_label(row["gender_concept_id"]), age // 10 * 10, row["municipality_code"])
            ] += 1
        return Evaluation(index_date=index_date, steps=steps, cells=dict(cells))

    def keys(self, criteria: Criteria, index_date: date) -> FeasibilityKeys:
        raise InputError("the cell key method needs the duckdb or spark engine, not 'reference'")

    def persons(self, criteria: Criteria, index_date: date) -> list[int]:
        population, day = self.counted(criteria, index_date)
        remaining = {
            p
            for p, row in population.items()
            if self.demographics_hold(row, criteria.demographics, day[p])
        }
        for rule in criteria.include:
            remaining &= self.rule_on(rule, day)
        for rule in criteria.exclude:
            remaining -= self.rule_on(rule, day)
        return sorted(remaining)

    def counted(
        self, criteria: Criteria, index_date: date
    ) -> tuple[dict[int, Row], dict[int, date]]:
        """The people counted and each one's index date: ``index_date`` for everyone, or with
        ``entry`` each person's own."""
        if criteria.entry is None:
            population = self.population(index_date)
            return population, dict.fromkeys(population, index_date)
        day = self.entries(criteria.entry)
        observed = {
            r["person_id"]
            for r in self.rows("observation_period")
            if r["person_id"] in day
            and r["observation_period_start_date"]
            <= day[r["person_id"]]
            <= r["observation_period_end_date"]
        }
        # A death before the entry date excludes; on it or later, the person is counted.
        dead = {
            r["person_id"]
            for r in self.rows("death")
            if r["person_id"] in day and r["death_date"] < day[r["person_id"]]
        }
        population = {
            r["person_id"]: r
            for r in self.rows("person")
            if r["person_id"] in observed and r["person_id"] not in dead
        }
        return population, {p: day[p] for p in population}

    def entries(self, entry: Entry) -> dict[int, date]:
        """Each person's entry date: the first record of the event in all their history, or
        the latest on or before the period's end; kept when it lies in the period."""
        spec = entry.spec
        table = schema.table(spec.TABLE)
        date_col = table.date_column
        codes, excluded = (
            self.matcher(spec.codeset, table),
            self.matcher(spec.exclude_codeset, table),
        )
        value = getattr(spec, "value", None)
        dates: defaultdict[int, list[date]] = defaultdict(list)
        for r in self.rows(spec.TABLE):
            in_time = entry.occurrence == "first" or r[date_col] <= entry.period.end
            if in_time and codes(r) and not excluded(r) and value_holds(value, r):
                dates[r["person_id"]].append(r[date_col])
        picked = {
            p: (min(ds) if entry.occurrence == "first" else max(ds)) for p, ds in dates.items()
        }
        return {p: d for p, d in picked.items() if entry.period.start <= d <= entry.period.end}

    def rule_on(self, rule: Model, day: dict[int, date]) -> set[int]:
        """The people (of ``day``) for whom the rule holds at their own index date."""
        found: dict[date, set[int]] = {}
        for d in set(day.values()):
            found[d] = self.rule(rule, d)
        return {p for p, d in day.items() if p in found[d]}

    # --- Population -------------------------------------------------------------------------

    def population(self, index_date: date) -> dict[int, Row]:
        """People alive (no death on or before the index date) and under observation on it."""
        observed = {
            r["person_id"]
            for r in self.rows("observation_period")
            if r["observation_period_start_date"] <= index_date <= r["observation_period_end_date"]
        }
        dead = {r["person_id"] for r in self.rows("death") if r["death_date"] <= index_date}
        return {
            r["person_id"]: r
            for r in self.rows("person")
            if r["person_id"] in observed and r["person_id"] not in dead
        }

    @staticmethod
    def demographics_hold(row: Row, demographics: Demographics, index_date: date) -> bool:
        age = age_at(row, index_date)
        if demographics.age is not None:
            if demographics.age.min is not None and age < demographics.age.min:
                return False
            if demographics.age.max is not None and age > demographics.age.max:
                return False
        sexes = demographics.sex
        if sexes is not None and row["gender_concept_id"] not in {SEX_CONCEPTS[s] for s in sexes}:
            return False
        if demographics.municipalities is not None:
            return row["municipality_code"] in demographics.municipalities
        return True

    # --- Rules --------------------------------------------------------------------------------

    def rule(self, rule: Model, index_date: date) -> set[int]:
        kind, body = rule_kind(rule), rule_body(rule)
        if kind == "any_of":
            return set().union(*(self.rule(r, index_date) for r in body))
        if kind == "all_of":
            return set.intersection(*(self.rule(r, index_date) for r in body))
        if kind == "none_of":
            everyone = {r["person_id"] for r in self.rows("person")}
            return everyone - set().union(*(self.rule(r, index_date) for r in body))
        if kind == "demographics":
            return {
                r["person_id"]
                for r in self.rows("person")
                if self.demographics_hold(r, body, index_date)
            }
        if kind == "at_least":
            hits = Counter(p for r in body.of for p in self.rule(r, index_date))
            return {p for p, n in hits.items() if n >= body.n}
        if kind == "visit":
            return self.visits(body, index_date)
        if kind == "death":
            return self.deaths(body, index_date)
        return self.events(body, index_date)

    def events(self, spec: EventSpec, index_date: date) -> set[int]:
        table = schema.table(spec.TABLE)
        date_col = table.date_column
        assert date_col is not None
        excluded = self.matcher(spec.exclude_codeset, table)
        rows = [
            r
            for r in self.rows(spec.TABLE)
            if in_window(r[date_col], spec, index_date) and not excluded(r)
        ]
        codes = self.matcher(spec.codeset, table)
        value = getattr(spec, "value", None)

        def value_ok(r: Row) -> bool:
            return value_holds(value, r)

        if isinstance(spec, DrugSpec) and spec.exposure is not None:
            return self.exposure(spec, [r for r in rows if codes(r)], index_date)
        if isinstance(spec, ValuedSpec) and spec.latest:
            among = self.matcher(spec.among_codeset, table)
            candidates = [
                r for r in rows if among(r) and (value is None or r["value_as_number"] is not None)
            ]
            last: dict[int, date] = {}
            for r in candidates:
                p = r["person_id"]
                last[p] = max(last.get(p, r[date_col]), r[date_col])
            return {
                r["person_id"]
                for r in candidates
                if r[date_col] == last[r["person_id"]] and codes(r) and value_ok(r)
            }
        return at_least_dates(
            ((r["person_id"], r[date_col]) for r in rows if codes(r) and value_ok(r)),
            spec.min_count,
        )

    @staticmethod
    def exposure(spec: DrugSpec, rows: list[Row], index_date: date) -> set[int]:
        """Exposure periods from the dispensings in the window: each covers its start to its
        end date, else ``days_supply`` days, else ``DEFAULT_SUPPLY_DAYS``; a dispensing
        starting at most ``ERA_GAP_DAYS`` after the supply so far ends (the day after it
        plus the gap) continues the period."""
        assert spec.exposure is not None
        spans: defaultdict[int, list[tuple[date, date]]] = defaultdict(list)
        for r in rows:
            start = r["drug_exposure_start_date"]
            if r.get("drug_exposure_end_date") is not None:
                end = r["drug_exposure_end_date"]
            elif r.get("days_supply") is not None:
                end = start + timedelta(days=r["days_supply"] - 1)
            else:
                end = start + timedelta(days=DEFAULT_SUPPLY_DAYS - 1)
            spans[r["person_id"]].append((start, end))
        found = set()
        for person_id, person_spans in spans.items():
            periods: list[list[date]] = []
            for start, end in sorted(person_spans):
                if periods and start <= periods[-1][1] + timedelta(days=1 + ERA_GAP_DAYS):
                    periods[-1][1] = max(periods[-1][1], end)
                else:
                    periods.append([start, end])
            for start, end in periods:
                current = not spec.exposure.current or start <= index_date <= end
                days = spec.exposure.min_days
                if current and (days is None or (end - start).days + 1 >= days):
                    found.add(person_id)
        return found

    def visits(self, spec: VisitSpec, index_date: date) -> set[int]:
        types = spec.concept_ids
        lo, hi = window_bounds(spec.within, index_date)
        return at_least_dates(
            (
                (r["person_id"], r["visit_start_date"])
                for r in self.rows("visit_occurrence")
                if (types is None or r["visit_concept_id"] in types)
                and (lo is None or r["visit_start_date"] >= lo)
                and r["visit_start_date"] <= hi
            ),
            spec.min_count,
        )

    def deaths(self, spec: DeathSpec, index_date: date) -> set[int]:
        lo, hi = spec.within.bounds(index_date)
        return {r["person_id"] for r in self.rows("death") if lo <= r["death_date"] <= hi}

    def matcher(self, codeset: Iterable[tuple[str, str]], table: schema.Table) -> Any:
        """A predicate on rows: does the row carry one of the codes?"""
        concept_ids: set[int] = set()
        exact: set[tuple[str, str]] = set()
        prefixes: list[tuple[str, str]] = []
        for vocab, code in codeset:
            if vocab == OMOP:
                concept_ids.add(int(code))
            elif codebook.vocabulary(vocab).hierarchical:
                prefixes.append((vocab, code))
            else:
                exact.add((vocab, code))
        concept_ids |= {
            r["descendant_concept_id"]
            for r in self.rows("concept_ancestor")
            if r["ancestor_concept_id"] in concept_ids
        }
        vocab_col, code_col, concept_col = (
            table.vocabulary_column,
            table.code_column,
            table.concept_column,
        )

        def matches(r: Row) -> bool:
            if r[concept_col] in concept_ids:
                return True
            vocab, code = r[vocab_col], r[code_col]
            if vocab is None or code is None:
                return False
            return (vocab, code) in exact or any(
                vocab == v and prefix_holds(p, code) for v, p in prefixes
            )

        return matches

    def rows(self, name: str) -> list[Row]:
        return self.tables.get(name, [])


# --- Shared definitions ------------------------------------------------------------------------


def age_at(person: Row, index_date: date) -> int:
    """Completed years at the index date; a missing month or day of birth counts as 1."""
    month = person.get("month_of_birth") or 1
    day = person.get("day_of_birth") or 1
    before_birthday = (month, day) > (index_date.month, index_date.day)
    return index_date.year - person["year_of_birth"] - int(before_birthday)


def sex_label(gender_concept_id: int | None) -> str:
    return codebook.SEX_OF_GENDER.get(gender_concept_id or 0, "unknown")


def value_holds(value: Any, r: Row) -> bool:
    """A record's value satisfies a ``ValueRange`` (None: any record)."""
    if value is None:
        return True
    v = r["value_as_number"]
    if v is None:
        return False
    low, high = r.get("range_low"), r.get("range_high")
    checks = [
        (value.min, lambda b: v >= b),
        (value.max, lambda b: v <= b),
        (value.above, lambda b: v > b),
        (value.below, lambda b: v < b),
        # Bounds on the normal range: a record without that end never matches.
        (value.min_times_upper_normal, lambda k: high is not None and v >= k * high),
        (value.max_times_upper_normal, lambda k: high is not None and v <= k * high),
        (value.min_times_lower_normal, lambda k: low is not None and v >= k * low),
        (value.max_times_lower_normal, lambda k: low is not None and v <= k * low),
    ]
    return all(check(bound) for bound, check in checks if bound is not None)


def prefix_holds(pattern: str, code: str) -> bool:
    """A hierarchical code matches by prefix (``E11``: E11, E119, ...); an ICD-10 range
    ``I00-I99`` matches a code whose start, as long as each end, lies between them."""
    if "-" in pattern:
        low, high = pattern.split("-")
        return code[: len(low)] >= low and code[: len(high)] <= high
    return code.startswith(pattern)


def in_window(day: date, spec: EventSpec, index_date: date) -> bool:
    lo, hi = window_bounds(spec.within, index_date)
    return (lo is None or day >= lo) and day <= hi


def at_least_dates(pairs: Iterable[tuple[int, date]], n: int) -> set[int]:
    dates: defaultdict[int, set[date]] = defaultdict(set)
    for person_id, day in pairs:
        dates[person_id].add(day)
    return {p for p, ds in dates.items() if len(ds) >= n}

"""Criteria -> Ibis expressions over a region's tables, the same on every engine.

Each rule compiles to a one-column table of distinct ``person_id``s. The population (alive and
under observation at the index date, with sex, age and municipality) is then left-joined to
every rule's set, giving one boolean flag per rule. From that single "flags" table come the
attrition counts and the breakdown cells (one group-by, ``Compiled.summary``) and the person list.
That is the plan Spark runs. The DuckDB engine (``bitmaps.py``) runs only ``Compiler.population``
and ``Compiler.rule`` and combines the kept person sets itself, with the same answers.

Semantics follow ``reference.py``; keep the two in step.
"""

from __future__ import annotations

__all__ = ["Compiled", "Compiler", "compile_criteria", "prefix_range"]

from dataclasses import dataclass
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
    code_bounds,
    rule_body,
    rule_kind,
    window_bounds,
)
from brygga.cohort.population import ENTRY_DATE, Tables, population, population_at_entry
from brygga.records import codes as codebook
from brygga.records import schema
from brygga.records.optimize import (
    NEXT_DATE,
    NEXT_START,
    NEXT_VALUED_DATE,
    PREV_DATE,
    SECOND_DATE,
    codes_table,
    first_table,
    runs_table,
)
from brygga.util import lazy_module

# Imported on first use, for start-up time: a question answered from stored bitmaps needs no Ibis.
ibis = lazy_module("ibis")
ir = lazy_module("ibis.expr.types")


@dataclass(frozen=True)
class Compiled:
    flags: ir.Table  # population with sex, age_band, municipality and one flag per rule
    conditions: list[ir.BooleanValue]  # cumulative: alive+observed, demographics, rule 1, ...

    @property
    def eligible(self) -> ir.Table:
        return self.flags.filter(self.conditions[-1])

    def summary(self) -> ir.Table:
        """Everything feasibility needs in one query: people counted by (sex, age_band,
        municipality, reached), where ``reached`` is the number of steps after the first that
        the person passes. Conditions are cumulative, so step i keeps everyone with
        reached >= i, and the eligible are those who reach the last step."""
        reached = sum(
            (ibis.ifelse(c, 1, 0) for c in self.conditions[1:]), start=ibis.literal(0)
        ).cast("int32")
        keys = ["sex", "age_band", "municipality", "reached"]
        t = self.flags.mutate(reached=reached)
        return t.group_by(keys).aggregate(n=t.count())

    def persons(self) -> ir.Table:
        # Unordered: a global sort costs Spark an extra sampling job; callers sort.
        return self.eligible.select("person_id")


def compile_criteria(criteria: Criteria, tables: Tables, index_date: date) -> Compiled:
    return Compiler(tables, index_date, entry=criteria.entry).compile(criteria)


class Compiler:
    """``key`` names the person column rules return: ``person_id``, or ``person_index`` on an
    optimized region (``records/optimize.py``). With ``distinct=False`` a rule that needs no
    grouping returns one row per matching record (the bitmap engine sets bits; it needs no
    distinct people, which cost a hash aggregation).

    With ``entry`` every person has their own index date (``population.ENTRY_DATE``): each
    rule's table is joined to the entered people's dates and windows are offsets from them;
    the optimized region's summaries (which hold one window end for everyone) are not used.
    ``entries``: those dates found already (``_entrykeep.entries``: the bitmap engine keeps
    them), instead of finding them again in every rule's query.
    """

    def __init__(
        self,
        tables: Tables,
        index_date: date,
        *,
        key: str = "person_id",
        distinct: bool = True,
        entry: Entry | None = None,
        entries: ir.Table | None = None,
    ) -> None:
        self.tables = tables
        self.index_date = index_date
        self.key = key
        self.distinct = distinct
        self.entry = entry
        self._entries: ir.Table | None = entries

    def compile(self, criteria: Criteria) -> Compiled:
        flags = self.population()
        steps = criteria.steps()[1:]
        for i, (_, _, rule) in enumerate(steps):
            assert rule is not None
            matched = self.rule(rule).rename({f"m{i}": "person_id"})
            flags = flags.left_join(matched, flags.person_id == matched[f"m{i}"])
            flags = flags.mutate(**{f"f{i}": flags[f"m{i}"].notnull()}).drop(f"m{i}")
        # Conditions are built on the final table so that every column resolves against it.
        # Step 0 must be a column (a literal True cannot be summed); person_id is never null.
        conditions: list[ir.BooleanValue] = [flags.person_id.notnull()]
        conditions.append(conditions[0] & self.demographics(flags, criteria.demographics))
        for i, (kind, _, _) in enumerate(steps):
            flag = flags[f"f{i}"]
            conditions.append(conditions[-1] & (flag if kind == "include" else ~flag))
        return Compiled(flags, conditions)

    # --- Population ---------------------------------------------------------------------------

    def population(self) -> ir.Table:
        """Everyone who counts on the index date (``population.py``, the one definition)."""
        if self.entry is not None:
            return population_at_entry(self.tables, self.entries())
        return population(self.tables, self.index_date)

    def entries(self) -> ir.Table:
        """(person_id, entry_date): each person's first record of the entry event in all
        their history, or their latest in the period, when that date is in the period."""
        assert self.entry is not None
        if self._entries is None:
            entry, spec = self.entry, self.entry.spec
            t = self.table(spec.TABLE)
            day = t[schema.table(spec.TABLE).date_column]
            records = t.filter(
                self.codes_ok(t, spec, spec.codeset)
                & self._value_ok(t, getattr(spec, "value", None))
            )
            if entry.occurrence == "latest":
                records = records.filter(day <= entry.period.end)
            day = records[schema.table(spec.TABLE).date_column]
            picked = day.min() if entry.occurrence == "first" else day.max()
            dates = records.group_by("person_id").aggregate(**{ENTRY_DATE: picked})
            when = dates[ENTRY_DATE]
            self._entries = dates.filter((when >= entry.period.start) & (when <= entry.period.end))
        return self._entries

    def rule_table(self, name: str) -> ir.Table:
        """The table a rule reads; with ``entry``, only entered people's rows, each with the
        person's entry date."""
        t = self.table(name)
        if self.entry is None:
            return t
        entries = self.entries()
        # Kept entries may carry the rules' key (``person_index``): the cheaper join.
        return t.join(entries, self.key if self.key in entries.columns else "person_id")

    @staticmethod
    def demographics(p: ir.Table, demographics: Demographics) -> ir.BooleanValue:
        condition: ir.BooleanValue = ibis.literal(True)
        if demographics.age is not None:
            if demographics.age.min is not None:
                condition &= p.age >= demographics.age.min
            if demographics.age.max is not None:
                condition &= p.age <= demographics.age.max
        if demographics.sex is not None:
            condition &= p.gender_concept_id.isin([SEX_CONCEPTS[s] for s in demographics.sex])
        if demographics.municipalities is not None:
            condition &= p.municipality.isin(demographics.municipalities)
        return condition

    # --- Rules --------------------------------------------------------------------------------

    def rule(self, rule: Model) -> ir.Table:
        """The distinct person ids for whom the rule holds (ignoring the population)."""
        kind, body = rule_kind(rule), rule_body(rule)
        if kind == "any_of":
            return ibis.union(*(self.rule(r) for r in body), distinct=True)
        if kind == "all_of":
            return ibis.intersect(*(self.rule(r) for r in body), distinct=True)
        if kind == "none_of":
            # Everyone (the population is applied by the caller) but those of any rule.
            everyone = self.persons(self.table("person"))
            held = ibis.union(*(self.rule(r) for r in body), distinct=False)
            return everyone.anti_join(held, self.key)
        if kind == "demographics":
            p = self.population()
            return self.persons(p.filter(self.demographics(p, body)))
        if kind == "at_least":
            stacked = ibis.union(*(self.rule(r) for r in body.of), distinct=False)
            counted = stacked.group_by("person_id").aggregate(n=stacked.count())
            return counted.filter(counted.n >= body.n).select("person_id")
        return self.leaf(body)

    def leaf(self, spec: EventSpec | VisitSpec | DeathSpec) -> ir.Table:
        if isinstance(spec, VisitSpec):
            return self.visits(spec)
        if isinstance(spec, DeathSpec):
            return self.deaths(spec)
        return self.events(spec)

    def events(self, spec: EventSpec) -> ir.Table:
        table_def = schema.table(spec.TABLE)
        if isinstance(spec, DrugSpec) and spec.exposure is not None:
            return self.exposure(spec)
        if isinstance(spec, ValuedSpec) and spec.latest:
            # The latest record matches when some matching record falls on the latest date:
            # one grouping pass (no join back to the rows), "max date of the matching records
            # equals the max date of all candidates".
            c = self.latest_candidates(spec)
            last = c.group_by(self.key).aggregate(last=c.day.max(), last_hit=c.day.max(where=c.hit))
            last = last.filter(last.last_hit == last["last"])
            return self.persons(last)
        if (rows := self.dated(spec)) is not None:
            return self.dated_persons(rows, spec)
        t = self.source(spec, latest=False)
        # One filter (not a filter on a filter): Ibis compiles it in half the time.
        matching = t.filter(self._event_condition(t, spec))
        return self.at_least_dates(matching, table_def.date_column, spec.min_count)

    def exposure(self, spec: DrugSpec) -> ir.Table:
        """Exposure periods (``reference.ReferenceEngine.exposure``) as gaps and islands:
        days as integers, a period starts at a dispensing beginning more than 1 +
        ``ERA_GAP_DAYS`` days after the latest supply end before it (in start order)."""
        assert spec.exposure is not None
        t = self.rule_table(spec.TABLE)  # the end dates: never a summary table
        rows = t.filter(self._event_condition(t, spec))
        epoch = ibis.date(1970, 1, 1)
        start = rows.drug_exposure_start_date.delta(epoch, unit="day")
        supplied = start + rows.days_supply.cast("int64") - 1
        end = ibis.coalesce(
            rows.drug_exposure_end_date.delta(epoch, unit="day"),
            supplied,
            start + (DEFAULT_SUPPLY_DAYS - 1),
        )
        keys = [self.key] if self.entry is None else [self.key, ENTRY_DATE]
        spans = rows.select(*keys, s=start.cast("int64"), e=end.cast("int64"))
        before = ibis.window(group_by=keys, order_by=["s", "e"], rows=(None, -1))
        spans = spans.mutate(prev=spans.e.max().over(before))
        spans = spans.mutate(
            new=ibis.ifelse(spans.prev.isnull() | (spans.s > spans.prev + 1 + ERA_GAP_DAYS), 1, 0)
        )
        upto = ibis.window(group_by=keys, order_by=["s", "e"], rows=(None, 0))
        spans = spans.mutate(period=spans.new.sum().over(upto))
        periods = spans.group_by([*keys, "period"]).aggregate(s=spans.s.min(), e=spans.e.max())
        ok: ir.BooleanValue = ibis.literal(True)
        if spec.exposure.current:
            if self.entry is None:
                day = ibis.literal(self.index_date).delta(epoch, unit="day")
            else:
                day = periods[ENTRY_DATE].delta(epoch, unit="day")
            ok &= (periods.s <= day) & (periods.e >= day)
        if spec.exposure.min_days is not None:
            ok &= periods.e - periods.s + 1 >= spec.exposure.min_days
        return self.persons(periods.filter(ok))

    def _event_condition(self, t: ir.Table, spec: EventSpec) -> ir.BooleanValue:
        table_def = schema.table(spec.TABLE)
        return (
            self.window(t[table_def.date_column], spec.within, t)
            & self.codes_ok(t, spec, spec.codeset)
            & self._value_ok(t, getattr(spec, "value", None))
        )

    def codes_ok(
        self, t: ir.Table, spec: EventSpec, codeset: tuple[tuple[str, str], ...]
    ) -> ir.BooleanValue:
        """The record carries one of ``codeset`` and none of the rule's ``exclude_codes``
        (a record without a code or vocabulary is excluded by none)."""
        table_def = schema.table(spec.TABLE)
        ok = self.code_predicate(t, table_def, codeset)
        if spec.exclude_codeset:
            ok &= ~self.code_predicate(t, table_def, spec.exclude_codeset).fill_null(False)
        return ok

    def _visit_condition(self, t: ir.Table, spec: VisitSpec) -> ir.BooleanValue:
        condition = self.window(t.visit_start_date, spec.within, t)
        if spec.concept_ids is not None:
            condition &= t.visit_concept_id.isin(spec.concept_ids)
        return condition

    def dated(self, spec: EventSpec | VisitSpec) -> ir.Table | None:
        """For a rule on at most two dates without a value range, when the optimized database
        answers it: its rows, at most one per code and person, such that the rule holds for
        a person on one date exactly when they have a row (``date_rows`` for two dates).
        None otherwise.

        * From ``<table>_first`` (no lower window bound; ``source``): each code's first date,
          on or before the window's end ``hi``.
        * From the next dates: each code's latest record in the window (``latest_of_key``;
          a code has a record in the window exactly when its latest on or before ``hi`` is
          in it).
        """
        if spec.min_count > 2 or getattr(spec, "value", None) is not None or self.entry:
            return None
        if isinstance(spec, VisitSpec):
            t = self.table("visit_occurrence")
            condition = self._visit_condition(t, spec)
        else:
            t = self.source(spec, latest=False)
            condition = self._event_condition(t, spec)
        if SECOND_DATE in t.columns:
            return t.filter(condition)
        if NEXT_DATE in t.columns:
            return t.filter(condition & self.latest_of_key(t, NEXT_DATE, spec.within))
        return None

    def date_rows(self, spec: EventSpec | VisitSpec) -> ir.Table | None:
        """``dated`` rows as (person, ``day``, ``twice``): the rule on two dates holds for a
        person exactly when they have a row with ``twice`` or two rows on different days.
        ``twice``: the code's second date is on or before ``hi`` too (first dates), or its
        previous date is in the window too (next dates)."""
        rows = self.dated(spec)
        return None if rows is None else self._mark_twice(rows, spec)

    def _mark_twice(self, rows: ir.Table, spec: EventSpec | VisitSpec) -> ir.Table:
        lo, hi = window_bounds(spec.within, self.index_date)
        if SECOND_DATE in rows.columns:
            twice = rows[SECOND_DATE] <= hi
        else:
            twice = rows[PREV_DATE].notnull() if lo is None else rows[PREV_DATE] >= lo
        visit = isinstance(spec, VisitSpec)
        day = "visit_start_date" if visit else schema.table(spec.TABLE).date_column
        return rows.select(rows[self.key], day=rows[day], twice=twice.fill_null(False))

    def dated_persons(self, rows: ir.Table, spec: EventSpec | VisitSpec) -> ir.Table:
        """The people of ``dated`` rows for whom the rule (one or two dates) holds."""
        if spec.min_count == 1:
            return self.persons(rows)
        rows = self._mark_twice(rows, spec)
        spread = rows.group_by(self.key).aggregate(
            first=rows.day.min(), last=rows.day.max(), twice=rows.twice.any()
        )
        return self.persons(spread.filter((spread["first"] < spread["last"]) | spread.twice))

    def latest_candidates(self, spec: ValuedSpec) -> ir.Table:
        """The records competing to be a "latest" rule's latest: person, ``day`` and ``hit``
        (the record matches the rule's codes and value)."""
        t, candidate, hit = self._latest_parts(spec)
        day = t[schema.table(spec.TABLE).date_column]
        return t.filter(candidate).select(t[self.key], day=day, hit=hit.fill_null(False))

    def _latest_parts(self, spec: ValuedSpec) -> tuple[ir.Table, ir.BooleanValue, ir.BooleanValue]:
        """The table a "latest" rule reads, which of its records compete, which are hits."""
        table_def = schema.table(spec.TABLE)
        t = self.source(spec, latest=True)
        candidate = self.window(t[table_def.date_column], spec.within, t) & self.codes_ok(
            t, spec, spec.among_codeset
        )
        if spec.value is not None:  # only records with a value compete for "latest"
            candidate &= t.value_as_number.notnull()
        # With the next-date columns, only each code's latest record(s) compete: the latest
        # of them all is the latest candidate.
        if self._as_of(spec) in t.columns and self.entry is None:
            candidate &= self.latest_of_key(t, self._as_of(spec), spec.within)
        hit = self.codes_ok(t, spec, spec.codeset) & self._value_ok(t, spec.value)
        return t, candidate, hit

    @staticmethod
    def _as_of(spec: ValuedSpec) -> str:
        """The next-date column a "latest" rule reads: with a value range only records with
        a value compete."""
        return NEXT_VALUED_DATE if spec.value is not None else NEXT_DATE

    def among_codes(self, spec: ValuedSpec) -> ir.Table | None:
        """The distinct codes competing for a "latest" rule, when the optimized database lists
        them and the rule reads its table's next dates; else None. With at most one code,
        ``latest_hits`` answers the rule."""
        codes = self.tables.table(codes_table(spec.TABLE))
        t = self.source(spec, latest=True)
        if codes is None or self._as_of(spec) not in t.columns or self.entry is not None:
            return None
        return codes.filter(self.codes_ok(codes, spec, spec.among_codeset))

    def latest_hits(self, spec: ValuedSpec) -> ir.Table:
        """The people with a competing record that is a hit: with a single competing code
        read through its next dates (``among_codes``), each person's competing records all
        fall on one date, so these are the people whose latest record matches."""
        t, candidate, hit = self._latest_parts(spec)
        return self.persons(t.filter(candidate & hit))

    def latest_state(self, spec: ValuedSpec, *, decided: bool = False) -> ir.Table | None:
        """For a "latest" rule read from observation runs with ``next_start``: each person's
        records on their latest recorded day on or before the window's end, whatever its codes
        (the run holding that day started on a day with the same records). A person with a
        competing record there is decided by it. Returns (person, ``among``) for the records
        there that are hits (``among`` true) or do not compete (``among`` false); with
        ``decided``, the people with a competing record there. None when the rule does not
        read runs."""
        table_def = schema.table(spec.TABLE)
        t = self.source(spec, latest=True)
        if NEXT_START not in t.columns or self.entry is not None:
            return None
        among = self.codes_ok(t, spec, spec.among_codeset).fill_null(False)
        state = self.window(t[table_def.date_column], spec.within) & self.latest_of_key(
            t, NEXT_START, spec.within
        )
        if decided:
            return self.persons(t.filter(state & among))
        hit = among & self.codes_ok(t, spec, spec.codeset)
        return t.filter(state & (hit | ~among)).select(t[self.key], among=among)

    def source(self, spec: EventSpec, *, latest: bool) -> ir.Table:
        """The table a rule reads: its event table, or a smaller summary built by
        ``brygga optimize`` (``records/optimize.py``) when the rule cannot tell them apart.

        Both summaries keep the code columns and the date, none of the values, so they serve
        only rules without a value range and without a lower window bound (window end ``hi``):

        * ``<table>_first`` (first and second date per code and person), for ``min_count``
          1 and 2: a record on or before ``hi`` exists exactly when the first date is on or
          before ``hi``; two dates exist when some code's second date is too, or two codes'
          first dates are and differ (``date_rows``);
        * ``<table>_runs`` (a person's records on days whose set of codes differs from their
          previous recorded day), for "latest": let d* be the latest day <= hi with a candidate
          record and R the run of identical days holding it. R's first day s <= d* <= hi has
          the same records, and every later run starting <= hi has no candidate (its days are
          after d*), so the latest run start with a candidate is s, with d*'s records.
        """
        if self.entry is not None:
            return self.rule_table(spec.TABLE)
        lo, _ = window_bounds(spec.within, self.index_date)
        value = getattr(spec, "value", None)
        if lo is None and value is None and (latest or spec.min_count <= 2):
            name = runs_table(spec.TABLE) if latest else first_table(spec.TABLE)
            summary = self.tables.table(name)
            columns = [] if summary is None else summary.columns
            usable = latest or spec.min_count == 1 or SECOND_DATE in columns
            if summary is not None and self.key in columns and usable:
                return summary
        return self.table(spec.TABLE)

    def persons(self, t: ir.Table) -> ir.Table:
        """The rule's result: the key column (``person_id`` as int64), distinct unless told."""
        key = t[self.key].cast("int64") if self.key == "person_id" else t[self.key]
        out = t.select(**{self.key: key})
        return out.distinct() if self.distinct else out

    @staticmethod
    def _value_ok(t: ir.Table, value: Any) -> ir.BooleanValue:
        """A value range holds: inclusive at both ends, and a missing value never matches."""
        if value is None:
            return ibis.literal(True)
        v = t.value_as_number
        ok = v.notnull()
        if value.min is not None:
            ok &= v >= value.min
        if value.max is not None:
            ok &= v <= value.max
        if value.above is not None:
            ok &= v > value.above
        if value.below is not None:
            ok &= v < value.below
        for key, column, at_least in (
            ("min_times_upper_normal", "range_high", True),
            ("max_times_upper_normal", "range_high", False),
            ("min_times_lower_normal", "range_low", True),
            ("max_times_lower_normal", "range_low", False),
        ):
            factor = getattr(value, key)
            if factor is None:
                continue
            if column not in t.columns:  # a region without normal ranges: nothing matches
                return ibis.literal(False)
            bound = t[column] * factor
            ok &= t[column].notnull() & ((v >= bound) if at_least else (v <= bound))
        return ok

    def visits(self, spec: VisitSpec) -> ir.Table:
        if (rows := self.dated(spec)) is not None:
            return self.dated_persons(rows, spec)
        t = self.rule_table("visit_occurrence")
        matching = t.filter(self._visit_condition(t, spec))
        return self.at_least_dates(matching, "visit_start_date", spec.min_count)

    def deaths(self, spec: DeathSpec) -> ir.Table:
        if self.entry is not None:
            t = self.rule_table("death")
            return self.persons(t.filter(self.window(t.death_date, spec.within, t)))
        t = self.table("death")
        lo, hi = spec.within.bounds(self.index_date)
        return self.persons(t.filter((t.death_date >= lo) & (t.death_date <= hi)))

    def window(self, day: ir.DateValue, within: Any, t: ir.Table | None = None) -> ir.BooleanValue:
        """The day is in the rule's window; with ``entry``, offsets from the person's entry
        date (a column of ``t``, the ``rule_table``)."""
        if self.entry is not None:
            assert t is not None
            start = t[ENTRY_DATE]
            before = 0 if within is None else within.days_before
            after = 0 if within is None else within.days_after
            # The same window around the period (every entry date lies in it) as constants
            # too: implied, but an engine skips the row groups of other dates with them (event
            # tables sorted by code and date).
            period = self.entry.period
            condition = day <= start + ibis.interval(days=after)
            if (last := _shifted(period.end, after)) is not None:
                condition &= day <= last
            if within is None:
                return condition
            condition &= day >= start - ibis.interval(days=before)
            if (first := _shifted(period.start, -before)) is not None:
                condition &= day >= first
            return condition
        lo, hi = window_bounds(within, self.index_date)
        condition = day <= hi
        return condition if lo is None else condition & (day >= lo)

    def latest_of_key(self, t: ir.Table, next_column: str, within: Any) -> ir.BooleanValue:
        """The record is its key's latest on or before the window's end ``hi`` (with the
        window's ``day <= hi``): its key's next date, if any, is after ``hi``."""
        _, hi = window_bounds(within, self.index_date)
        return t[next_column].isnull() | (t[next_column] > hi)

    def at_least_dates(self, rows: ir.Table, date_column: str, n: int) -> ir.Table:
        if n == 1:
            return self.persons(rows)
        if n == 2:
            # Two distinct dates: the first is before the last. Engines aggregate min and max
            # far faster than a distinct count (DuckDB, 766,000 rows: 56 ms against 151 ms).
            day = rows[date_column]
            spread = rows.group_by(self.key).aggregate(first=day.min(), last=day.max())
            return self.persons(spread.filter(spread["first"] < spread["last"]))
        counted = rows.group_by(self.key).aggregate(n=rows[date_column].nunique())
        return self.persons(counted.filter(counted.n >= n))

    def code_predicate(
        self, t: ir.Table, table_def: schema.Table, codeset: tuple[tuple[str, str], ...]
    ) -> ir.BooleanValue:
        vocab_col, code_col = t[table_def.vocabulary_column], t[table_def.code_column]
        concept_col = t[table_def.concept_column]
        concept_ids = [int(c) for v, c in codeset if v == OMOP]
        terms: list[ir.BooleanValue] = []
        if concept_ids:
            terms.append(concept_col.isin(concept_ids))
            ancestor = self.tables.table("concept_ancestor")
            if ancestor is not None:
                below = ancestor.filter(ancestor.ancestor_concept_id.isin(concept_ids))
                terms.append(concept_col.isin(below.descendant_concept_id))
        by_vocab: dict[str, list[str]] = {}
        for v, c in codeset:
            if v != OMOP:
                by_vocab.setdefault(v, []).append(c)
        for vocab, vocab_codes in by_vocab.items():
            if codebook.vocabulary(vocab).hierarchical:
                matches = [prefix_range(code_col, c) for c in vocab_codes]
                code_ok = matches[0]
                for m in matches[1:]:
                    code_ok |= m
            else:
                code_ok = code_col.isin(vocab_codes)
            terms.append((vocab_col == vocab) & code_ok)
        result = terms[0]
        for term in terms[1:]:
            result |= term
        return result

    def table(self, name: str) -> ir.Table:
        t = self.tables.table(name)
        if t is None:
            raise AssertionError(f"region has no {name} table")  # Region.open guarantees it
        return t


def _shifted(day: date, days: int) -> date | None:
    """``day`` moved by ``days``; None beyond the calendar (no bound then)."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return None


def prefix_range(column: ir.StringValue, prefix: str) -> ir.BooleanValue:
    """``column`` starts with ``prefix`` (or lies in an ICD-10 range ``I00-I99``), written as
    a range so that engines can use min/max statistics and the sort order: codes are ASCII, so
    "starts with E11" is E11 <= code < E12 (``criteria.code_bounds``)."""
    low, high = code_bounds(prefix)
    return (column >= low) & (column < high)

"""Prevention programs: who to invite, in which order, within each care unit's capacity.

A program (YAML) = target criteria in the cohort language + a risk score and threshold +
capacity per care unit (the person's listed vårdcentral, ``person.care_site_id``)::

    name: Hjärtkoll 50-69
    criteria:                       # the cohort language (docs/cohort.md), inline
      demographics: {age: {min: 50, max: 69}}
      exclude:
        - drug: {codes: ["C10AA"], vocabulary: ATC, within: {days_before: 365}}
    score: {model: applicable, min_risk_percent: 7.5}
    capacity: {default: 25, units: {"12": 40}}
    reimbursement:                  # used by evaluation.py
      sbp: {min_drop: 10, payment_sek: 600}

``plan_program`` ranks the eligible people of each unit by risk (highest first) and marks the
first ``capacity`` as invited. The plan holds pseudonymous ids only; ``summary`` discloses
counts (under the Cell Key Method with the key of the people counted, ``privacy.people``) as
one table with secondary suppression (``ProgramPlan._disclose``, docs/privacy.md). The
identifiable invitation list is made only by ``invitation_list``, for one care unit, with a
stated legal basis, and every call writes an audit record (security property 4). It is never
part of a research output.
"""

from __future__ import annotations

__all__ = [
    "IDENTITY_COLUMNS",
    "LIST_COLUMNS",
    "SUMMARY_COUNTS",
    "SUPPRESSED",
    "Capacity",
    "Payment",
    "Program",
    "ProgramPlan",
    "Reimbursement",
    "ScoreRule",
    "care_units",
    "invitation_list",
    "load_program",
    "parse_program",
    "plan_program",
    "target_persons",
]

import csv
import hashlib
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from brygga import documents
from brygga.cohort.criteria import Criteria
from brygga.cohort.engines import IbisEngine
from brygga.errors import DocumentError, InputError, NotFoundError
from brygga.prevention.inputs import RiskInputs, extract_inputs, input_engine
from brygga.prevention.scores import MODEL_KEYS
from brygga.prevention.stratify import MODEL_CHOICES, PopulationRisk, population_risk
from brygga.privacy.disclosure import SECONDARY, DisclosurePolicy
from brygga.privacy.people import PeopleTable, people_counter
from brygga.records.store import Region, identities_path
from brygga.util import atomic_path

SUPPRESSED = {"value": None, "display": SECONDARY}
# The program-wide counts of ``brygga program``, in the order shown.
SUMMARY_COUNTS = (
    "target_criteria_met", "eligible", "invited", "beyond_capacity", "not_listed_at_a_unit",
)  # fmt: skip


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScoreRule(_Model):
    model: str = "applicable"
    min_risk_percent: float = Field(default=0.0, ge=0, le=100)

    @model_validator(mode="after")
    def _known_model(self) -> ScoreRule:
        if self.model not in MODEL_CHOICES:
            raise ValueError(f"model must be one of {', '.join(MODEL_CHOICES)}")
        return self


class Capacity(_Model):
    default: int = Field(default=0, ge=0)
    units: dict[int, int] = Field(default_factory=dict)

    def of(self, unit: int) -> int:
        return self.units.get(unit, self.default)


class Payment(_Model):
    min_drop: float = Field(gt=0)
    payment_sek: float = Field(ge=0)


class Reimbursement(_Model):
    """Payment per verified improvement (a drop of at least ``min_drop`` from baseline)."""

    sbp: Payment = Payment(min_drop=10, payment_sek=500)
    total_chol: Payment = Payment(min_drop=0.5, payment_sek=300)
    hba1c: Payment = Payment(min_drop=5, payment_sek=400)


class Program(_Model):
    name: str
    index_date: date | None = None
    criteria: Criteria = Criteria()
    score: ScoreRule = ScoreRule()
    capacity: Capacity = Capacity()
    reimbursement: Reimbursement = Reimbursement()

    def fingerprint(self, index_date: date) -> str:
        doc = self.model_dump(mode="json", exclude={"name"})
        doc["index_date"] = index_date.isoformat()
        text = yaml.safe_dump(doc, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_program(data: Any, source: str = "program") -> Program:
    """Validate decoded YAML (or a ``documents.Document``); one error names every problem."""
    document = data if isinstance(data, documents.Document) else documents.Document(data, source)
    if not isinstance(document.data, dict):
        raise DocumentError(
            f"{document.source}: a program must be a mapping (name, criteria, score, ...)"
        )
    return documents.validate(Program, document, "program")


def load_program(path: str | Path) -> Program:
    return parse_program(documents.read_file(path, "program"))


def target_persons(
    criteria: Criteria, region: Region, index_date: date, engine: str = "duckdb"
) -> np.ndarray:
    """Pseudonymous ids meeting the target criteria, by the cohort engine ``engine``."""
    from brygga.cohort.feasibility import eligible_persons

    ids = eligible_persons(criteria, region, engine=engine, index_date=index_date)
    return np.asarray(ids, dtype=np.int64)


@dataclass(frozen=True)
class ProgramPlan:
    """Eligible people (pseudonymous), ranked within their care unit. Internal use only."""

    program: Program
    region: Region
    index_date: date
    risk: PopulationRisk
    person_id: np.ndarray  # eligible people, sorted by (unit, rank)
    care_site_id: np.ndarray
    risk_percent: np.ndarray
    rank: np.ndarray  # 1 = highest risk in the unit
    invited: np.ndarray  # within the unit's capacity
    in_target: np.ndarray  # per person of ``inputs``: met the criteria (before score, threshold)
    unlisted: np.ndarray  # per person of ``inputs``: eligible but at no care unit (not invitable)

    @property
    def inputs(self) -> RiskInputs:
        return self.risk.inputs

    @property
    def targeted(self) -> int:
        return int(self.in_target.sum())

    @property
    def no_unit(self) -> int:
        return int(self.unlisted.sum())

    def unit_rows(self, unit: int) -> np.ndarray:
        return np.flatnonzero(self.care_site_id == unit)

    def unit_names(self) -> dict[int, str]:
        """care_site_id -> name of the region's primary-care units (``care_units``)."""
        return care_units(input_engine(self.region))

    def summary(
        self, policy: DisclosurePolicy, names: Mapping[int, str] | None = None
    ) -> dict[str, Any]:
        """The plan's counts, disclosed as one table with secondary suppression; ``names``
        (``unit_names``) names the care units beside their ids."""
        shown, units = self._disclose(policy)
        names = names or {}
        per_unit = {
            str(u): {
                "name": names.get(u),
                "capacity": self.program.capacity.of(u),
                "eligible": shown[("eligible", u)],
                "invited": shown[("invited", u)],
            }
            for u in units
        }
        return {
            "program": self.program.name,
            "region": self.region.name,
            "index_date": self.index_date.isoformat(),
            "fingerprint": self.program.fingerprint(self.index_date),
            "score": self.program.score.model_dump(),
            "raw": policy.raw,
            "disclosure": policy.description,
            **{name: shown[name] for name in SUMMARY_COUNTS},
            "units": per_unit,
        }

    def _disclose(self, policy: DisclosurePolicy) -> tuple[dict, list[int]]:
        """Every count, with the lines a reader knows (``docs/privacy.md``).

        Units add up to the totals; the targeted people are the eligible, those at no unit and
        a never-shown rest (below the risk threshold or not scored). A unit invites its first
        ``capacity`` eligible people, and the reader holds the program: a unit that is not full
        invited exactly its eligible people (the same cell twice), a full one exactly its
        capacity. So the invited total tells the reader the eligible of the units that are not
        full (less the full units' capacities), and the beyond-capacity total those of the full
        units: those two sums are the cells the table protects, and each total is shown only
        when its sum is. A full unit's invited count is the capacity the program states.
        """
        everyone = people_counter(policy, self.region, self.inputs["person_id"])
        rows = np.searchsorted(self.inputs["person_id"], self.person_id)
        eligible = everyone.subset(rows)
        units, unit_index = np.unique(self.care_site_id, return_inverse=True)
        counts, sums = eligible.tally(unit_index, len(units))
        full = np.bincount(unit_index, weights=~self.invited, minlength=len(units)) > 0
        table = PeopleTable(everyone)
        table.add("target_criteria_met", self.in_target)
        table.add("not_listed_at_a_unit", self.unlisted)
        rest = self.in_target & ~self.unlisted
        rest[rows] = False
        table.add_hidden("below_threshold_or_not_scored", rest)
        for i, u in enumerate(int(x) for x in units):
            table.add_count(("eligible", u), int(counts[i]), int(sums[i]))
            if not full[i]:  # the same people
                table.add_count(("invited", u), int(counts[i]), int(sums[i]))
                table.line(("eligible", u), [("invited", u)])
        table.add_count("eligible", int(counts.sum()), int(sums.sum()))
        for cell, part in (("at units not full", ~full), ("at full units", full)):
            table.add_count(cell, int(counts[part].sum()), int(sums[part].sum()))
            table.line(cell, [("eligible", int(u)) for u in units[part]])
        table.line("eligible", [("eligible", int(u)) for u in units])
        table.line("eligible", ["at units not full", "at full units"])
        table.line(
            "target_criteria_met",
            ["eligible", "not_listed_at_a_unit", "below_threshold_or_not_scored"],
        )
        keep = ["target_criteria_met", "eligible", "at units not full"]
        shown = table.disclose(keep=keep)
        invited = self.invited
        for cell, rows_of, behind in (
            ("invited", invited, "at units not full"),
            ("beyond_capacity", ~invited, "at full units"),
        ):
            hidden = shown[behind]["value"] is None
            shown[cell] = SUPPRESSED if hidden else eligible.count(rows_of)
        for i, u in enumerate(int(x) for x in units):
            if full[i]:  # the capacity, which the program states
                shown[("invited", u)] = eligible.count(invited & (unit_index == i))
        return shown, [int(u) for u in units]


def plan_program(
    program: Program,
    region: Region,
    *,
    index_date: date | None = None,
    engine: IbisEngine | str | None = None,
) -> ProgramPlan:
    """Criteria ∩ risk ≥ threshold, ranked by risk within each care unit, capped by capacity.
    Inputs and criteria both run on ``engine`` (duckdb or spark; default: the configured)."""
    runner = input_engine(region, engine)
    inputs = extract_inputs(region, index_date=index_date or program.index_date, engine=runner)
    idx = inputs.index_date
    pr = population_risk(inputs, model=program.score.model)
    targets = target_persons(program.criteria, region, idx, runner.name)
    pid = inputs["person_id"]
    in_target = np.isin(pid, targets, assume_unique=True)
    risk = pr.risk_percent
    ok = in_target & (pr.category >= 0) & (risk >= program.score.min_risk_percent)
    unit = inputs["care_site_id"]
    rows = np.flatnonzero(ok & (unit >= 0))
    # Sort by unit, then risk descending, then id (a stable, reproducible order).
    order = np.lexsort((pid[rows], -risk[rows], unit[rows]))
    rows = rows[order]
    u = unit[rows]
    starts = np.r_[0, np.flatnonzero(np.diff(u)) + 1] if len(u) else np.zeros(0, np.int64)
    first = np.repeat(starts, np.diff(np.r_[starts, len(u)]))
    rank = np.arange(len(u)) - first + 1
    capacity = np.array([program.capacity.of(int(x)) for x in np.unique(u)], np.int64)
    cap = capacity[np.searchsorted(np.unique(u), u)] if len(u) else np.zeros(0, np.int64)
    return ProgramPlan(
        program=program,
        region=region,
        index_date=idx,
        risk=pr,
        person_id=pid[rows],
        care_site_id=u,
        risk_percent=risk[rows],
        rank=rank,
        invited=rank <= cap,
        in_target=in_target,
        unlisted=ok & (unit < 0),
    )


IDENTITY_COLUMNS = (
    "person_id", "personnummer", "given_name", "family_name", "street_address", "postal_code",
    "post_town", "phone", "email",
)  # fmt: skip
# ``invitation_date`` (the day the list was drawn up for: the plan's index date) makes the
# list an invitation file ``brygga evaluate`` reads as it is; a unit that sends its invitations
# later puts the day it sent them there.
LIST_COLUMNS = ("rank", *IDENTITY_COLUMNS, "risk_percent", "model", "invitation_date")


def care_units(engine: IbisEngine) -> dict[int, str]:
    """care_site_id -> name of the region's primary-care units."""
    site = engine.table("care_site")
    if site is None:
        return {}
    kind = site.place_of_service_source_value.fill_null("primary care")
    rows = engine.to_arrow(
        site.filter(kind == "primary care").select("care_site_id", "care_site_name")
    ).to_pydict()
    return {
        int(i): str(n) for i, n in zip(rows["care_site_id"], rows["care_site_name"], strict=True)
    }


def invitation_list(
    plan: ProgramPlan,
    *,
    care_unit: int,
    legal_basis: str,
    actor: str,
    out: Path,
    identities: Path | None = None,
    audit_log: Path | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Write the identifiable, prioritized invitation list of one care unit; audit it first.

    The audit record is written before the identities are read, so a read without a record
    cannot happen; it names the program, unit, legal basis, actor and the number of people,
    never who they are.
    """
    from brygga import audit

    if len(legal_basis.strip()) < 5:
        raise InputError("--legal-basis must state the legal basis (e.g. 'HSL 2017:30 3 kap')")
    if not actor.strip():
        raise InputError("--actor must name who asks for the list")
    units = care_units(input_engine(plan.region))
    if care_unit not in units:
        raise NotFoundError(f"care unit {care_unit} is not a primary-care unit of the region")
    identities = identities or identities_path(plan.region.path)
    if not identities.is_file():
        raise NotFoundError(f"identities file {str(identities)!r} does not exist")
    if out.exists() and not force:
        raise InputError(f"output {str(out)!r} exists; use --force to replace it")
    rows = plan.unit_rows(care_unit)
    rows = rows[plan.invited[rows]]
    ids = plan.person_id[rows]
    digest = hashlib.sha256(ids.astype("<i8").tobytes()).hexdigest()
    record = audit.append(
        "prevention-list.identities-read",
        actor=actor,
        details={
            "program": plan.program.name,
            "program_fingerprint": plan.program.fingerprint(plan.index_date),
            "region": plan.region.name,
            "index_date": plan.index_date.isoformat(),
            "care_unit": care_unit,
            "legal_basis": legal_basis,
            "people": len(ids),
            "person_ids_sha256": digest,
            "output": out.name,
        },
        path=audit_log,
    )
    wanted = pa.array(ids, pa.int64())
    found = pq.read_table(identities, columns=list(IDENTITY_COLUMNS))
    found = found.filter(pc.is_in(found.column("person_id"), value_set=wanted)).to_pydict()
    ident = {int(p): i for i, p in enumerate(found["person_id"])}  # the unit's list only
    models = plan.risk.scores.model[np.searchsorted(plan.inputs["person_id"], ids)]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(LIST_COLUMNS)
    for rank, pid, risk, model in zip(
        plan.rank[rows], ids, plan.risk_percent[rows], models, strict=True
    ):
        i = ident.get(int(pid))
        values = [found[k][i] if i is not None else "" for k in IDENTITY_COLUMNS[1:]]
        writer.writerow([int(rank), int(pid), *values, float(risk), MODEL_KEYS[int(model)],
                         plan.index_date.isoformat()])  # fmt: skip
    with atomic_path(out) as tmp:
        os.chmod(tmp, 0o600)  # identifiable: readable by the owner only
        tmp.write_text(buf.getvalue(), encoding="utf-8")
    return {
        "program": plan.program.name,
        "care_unit": care_unit,
        "care_unit_name": units[care_unit],
        "out": str(out),
        "people": len(ids),
        "audit_record": record["hash"],
    }

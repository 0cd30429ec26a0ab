"""A care unit's worklist: the people its program invites, with why each was chosen.

``invitation_list`` (programs.py) writes the identifiable list as a file for the CLI; the
browser shows the same people of the same plan with the reasons a nurse needs before calling:
the model and risk, and the latest blood pressure, lipids, HbA1c and smoking status with their
dates. Like the file, it is for the user's own unit only, needs a stated legal basis, and is
audited before the identities are read (security property 4). The programs a region offers
are the YAML files in one directory (``Settings.programs_dir``).

Residents who asked to be invited (the ``prevention_invite`` consent, given from the self-check
``/egenkontroll``) are marked ``asked``: the unit can call them first or list only them. The
caller passes the person ids whose consent stands at the time of reading
(``registry.consent.consenting_people``), so a withdrawn consent unmarks at once.
"""

from __future__ import annotations

__all__ = ["LEGAL_BASES", "Reason", "WorkItem", "program_files", "worklist"]

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from brygga import audit
from brygga.errors import InputError, NotFoundError
from brygga.prevention.inputs import SMOKING_STATUS, input_engine
from brygga.prevention.programs import IDENTITY_COLUMNS, ProgramPlan, care_units
from brygga.prevention.scores import MODEL_KEYS
from brygga.records.store import identities_path

# The legal bases a unit states (recorded in the audit log; the page offers these, the CLI
# takes any text): the Patient Data Act's care purposes and the Health and Medical Services
# Act's duty of preventive work.
LEGAL_BASES = (
    "PDL 2008:355 2 kap. 4 § (vårddokumentation och vårdens planering)",
    "HSL 2017:30 3 kap. 2 § (förebyggande arbete)",
)
LABS = ("sbp", "total_chol", "hdl", "hba1c")


@dataclass(frozen=True)
class Reason:
    value: float | None
    on: date | None


@dataclass(frozen=True)
class WorkItem:
    rank: int
    person_id: int
    personnummer: str
    name: str
    phone: str
    risk_percent: float
    model: str
    labs: dict[str, Reason]
    smoking: str | None  # never, ex, current; None if not recorded
    asked: bool = False  # the resident asked to be invited (prevention_invite consent)


def program_files(directory: Path) -> dict[str, Path]:
    """slug -> program file, for every YAML file in ``directory`` (sorted by name)."""
    if not directory.is_dir():
        return {}
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    return {f.stem: f for f in files}


def worklist(
    plan: ProgramPlan, *, care_unit: int, legal_basis: str, actor: str,
    identities: Path | None = None, audit_log: Path | None = None,
    asked: Collection[int] = (), asked_first: bool = False, only_asked: bool = False,
) -> list[WorkItem]:  # fmt: skip
    """The unit's invited people in rank order, each with why; audited before it is read.

    ``asked``: the person ids of residents who asked to be invited (their consent standing
    now); they are marked, listed first with ``asked_first`` (then by rank), or alone with
    ``only_asked``."""
    if legal_basis not in LEGAL_BASES and len(legal_basis.strip()) < 5:
        raise InputError("state the legal basis for reading the list")
    if care_unit not in care_units(input_engine(plan.region)):
        raise NotFoundError(f"care unit {care_unit} is not a primary-care unit of the region")
    identities = identities or identities_path(plan.region.path)
    rows = plan.unit_rows(care_unit)
    rows = rows[plan.invited[rows]]
    wanted = np.fromiter(asked, dtype=np.int64, count=len(asked))
    marked = np.isin(plan.person_id[rows], wanted)
    if only_asked:  # fewer identities read: only those the unit will call
        rows, marked = rows[marked], marked[marked]
    ids = plan.person_id[rows]
    audit.append(
        "prevention-worklist.identities-read",
        actor=actor,
        details={
            "program": plan.program.name,
            "program_fingerprint": plan.program.fingerprint(plan.index_date),
            "region": plan.region.name,
            "index_date": plan.index_date.isoformat(),
            "care_unit": care_unit,
            "legal_basis": legal_basis,
            "people": len(ids),
            "only_asked": only_asked,
        },
        path=audit_log,
    )
    found = pq.read_table(identities, columns=list(IDENTITY_COLUMNS))
    found = found.filter(pc.is_in(found.column("person_id"), value_set=pa.array(ids, pa.int64())))
    ident = {int(p): i for i, p in enumerate(found.column("person_id").to_pylist())}
    cols = found.to_pydict()
    inputs = plan.inputs
    at = np.searchsorted(inputs["person_id"], ids)
    out = []
    for rank, pid, risk, row, wish in zip(
        plan.rank[rows], ids, plan.risk_percent[rows], at, marked, strict=True
    ):
        i = ident.get(int(pid))
        labs = {name: _reason(inputs[name][row], inputs[f"{name}_date"][row]) for name in LABS}
        status = int(inputs["smoking_status"][row])
        out.append(WorkItem(
            rank=int(rank), person_id=int(pid),
            personnummer=cols["personnummer"][i] if i is not None else "",
            name=f"{cols['given_name'][i]} {cols['family_name'][i]}" if i is not None else "",
            phone=cols["phone"][i] if i is not None else "",
            risk_percent=float(risk), model=MODEL_KEYS[int(inputs.model[row])], labs=labs,
            smoking=SMOKING_STATUS[status] if status >= 0 else None, asked=bool(wish),
        ))  # fmt: skip
    if asked_first:
        out.sort(key=lambda item: (not item.asked, item.rank))  # stable: rank order within
    return out


def _reason(value: float, day: np.datetime64) -> Reason:
    if not np.isfinite(value):
        return Reason(None, None)
    on = None if np.isnat(day) else date.fromisoformat(str(day.astype("datetime64[D]")))
    return Reason(float(value), on)

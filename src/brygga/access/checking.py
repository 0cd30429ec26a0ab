"""Output checking (OpenSAFELY's model): nothing made under a permit leaves until automatic
checks pass and a second person approves its release; only released files can be downloaded;
every step writes an audit record.

Automatic checks, run when the output is made:

* ``small_counts`` (statistics): every count and sum in the files is 0, suppressed, or at
  least the disclosure threshold (the gate made them so; this reads the files as written);
* ``dominance`` (statistics with sums): in no cell do the ``n`` largest contributors make up
  more than ``share`` of the sum (the (n, k) rule);
* ``k`` (extracts): every combination of the person file's quasi-identifiers (the person
  variables) occurs at least ``k`` times.

A check that does not apply to a kind of output says so. The reviewer is a data steward who
is not the person who asked for the release. Under a donation-based permit, release and every
download first check that everyone in the output is still a donor; if one has withdrawn, the
output is void at once (make it again without them).
"""

from __future__ import annotations

__all__ = [
    "OUTPUT_ROOT",
    "Checks",
    "automatic_checks",
    "downloadable",
    "output_dir",
    "outputs_of",
    "record_output",
    "review_release",
    "void_if_withdrawn",
]

import csv
import hashlib
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from brygga import audit, clock
from brygga.access.applications import Actor
from brygga.access.donors import still_donors
from brygga.access.models import AccessOutput, Permit
from brygga.access.review import holds, permit_state
from brygga.errors import InputError, NotFoundError, PermissionDenied
from brygga.forms import FieldMessage, FormError

OUTPUT_ROOT = Path("access") / "outputs"  # under the platform's data directory
PEOPLE_FILE = "person_ids.npy"  # internal: who is in an output (the donation re-check)


@dataclass(frozen=True)
class Checks:
    results: dict[str, dict[str, Any]]

    @property
    def passed(self) -> bool:
        return all(r["status"] != "fail" for r in self.results.values())

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, **self.results}


def _na(why: str) -> dict[str, Any]:
    return {"status": "not_applicable", "detail": why}


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def automatic_checks(
    kind: str,
    files: list[Path],
    *,
    threshold: int,
    k: int,
    quasi_identifiers: list[str] = (),  # type: ignore[assignment]
    dominance: dict[str, float] | None = None,
    dominance_n: int = 2,
    dominance_share: float = 0.85,
) -> Checks:
    results: dict[str, dict[str, Any]] = {}
    data = [f for f in files if f.suffix in (".csv", ".parquet")]
    if kind == "statistics":
        small = []
        for path in data:
            for row in _read_rows(path):
                for column in ("people", "visits"):
                    value = str(row.get(column) or "").strip()
                    if value.isdigit() and 0 < int(value) < threshold:
                        small.append(f"{path.name}: {column}")
        results["small_counts"] = (
            {"status": "fail", "detail": f"counts below {threshold} in " + ", ".join(small[:5])}
            if small
            else {"status": "pass", "detail": f"every count is 0, suppressed or >= {threshold}"}
        )
        if dominance:
            over = sorted(c for c, share in dominance.items() if share > dominance_share)
            results["dominance"] = (
                {"status": "fail",
                 "detail": f"the {dominance_n} largest contributors make up more than "
                           f"{dominance_share:.0%} of " + ", ".join(over[:5])}
                if over
                else {"status": "pass",
                      "detail": f"({dominance_n}, {dominance_share:.0%}) rule holds in every cell"}
            )  # fmt: skip
        else:
            results["dominance"] = _na("no sums in this output")
        results["k"] = _na("aggregate statistics: no records")
        return Checks(results)
    results["small_counts"] = _na("record-level data: see k")
    results["dominance"] = _na("record-level data: no sums")
    person = next((f for f in data if f.stem == "person"), None)
    if person is None or not quasi_identifiers:
        results["k"] = _na("no person variables (quasi-identifiers) in this extract")
        return Checks(results)
    rows = _read_rows(person)
    classes = Counter(tuple(str(r.get(q)) for q in quasi_identifiers) for r in rows)
    small_classes = sum(1 for n in classes.values() if n < k)
    results["k"] = (
        {"status": "fail",
         "detail": f"some combinations of {', '.join(quasi_identifiers)} occur fewer than {k} "
                   "times; ask for fewer or coarser person variables, or anonymised data"}
        if small_classes
        else {"status": "pass",
              "detail": f"every combination of {', '.join(quasi_identifiers)} occurs at least "
                        f"{k} times"}
    )  # fmt: skip
    return Checks(results)


def output_dir(data_dir: Path, output_id: int) -> Path:
    return data_dir / OUTPUT_ROOT / str(output_id)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def record_output(
    session: Session,
    actor: Actor,
    permit: Permit,
    *,
    kind: str,
    region: str,
    fmt: str,
    staged: Path,
    checks: Checks,
    summary: dict[str, Any],
    person_ids: np.ndarray,
    data_dir: Path,
) -> AccessOutput:
    """The output row for files made in ``staged`` (moved to the output's own folder), with
    its automatic checks; its maker is the one who asks for its release."""
    output = AccessOutput(
        permit_id=permit.id,
        kind=kind,
        status="checked",
        region=region,
        format=fmt,
        requested_by=actor.id,
        created_at=clock.now(),
        checks=checks.as_dict(),
        summary=summary,
    )
    session.add(output)
    session.flush()
    folder = output_dir(data_dir, output.id)
    if folder.exists():  # a row id reused after a rolled-back attempt: its files are stale
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.mkdir()
    (staged / "files").rename(folder / "files")
    internal = folder / "internal"
    internal.mkdir()
    np.save(internal / PEOPLE_FILE, np.asarray(person_ids, dtype=np.int64))
    output.files = [
        {"name": p.name, "bytes": p.stat().st_size, "sha256": _digest(p)}
        for p in sorted((folder / "files").iterdir())
    ]
    session.flush()
    audit.append(
        f"access.{kind}.create",
        actor=actor.ref,
        details={"permit": permit.id, "output": output.id, "checks": checks.passed},
    )
    return output


def _people(data_dir: Path, output: AccessOutput) -> np.ndarray:
    return np.load(output_dir(data_dir, output.id) / "internal" / PEOPLE_FILE)


def _refuse_withdrawn(
    session: Session, output: AccessOutput, permit: Permit, data_dir: Path
) -> None:
    """Refuse (without writing) an output with someone who is no longer a donor; the caller
    voids it first in a transaction of its own (``void_if_withdrawn``), which stays."""
    if permit.donation_based and not still_donors(session, _people(data_dir, output)):
        raise PermissionDenied(
            f"output {output.id}: a donor withdrew their consent after it was made; it is void"
        )


def void_if_withdrawn(
    session: Session, output: AccessOutput, permit: Permit, data_dir: Path, actor: Actor
) -> bool:
    """Under a donation-based permit: void the output if anyone in it is no longer a donor
    (their withdrawal takes effect at once), deleting its files. Returns True when it is void.
    Run in a transaction of its own before a release or download, so the voiding stays when
    the release or download is then refused."""
    if not permit.donation_based or output.status == "void":
        return output.status == "void"
    if still_donors(session, _people(data_dir, output)):
        return False
    output.status = "void"
    output.review_reason = "a donor withdrew their consent after this output was made"
    shutil.rmtree(output_dir(data_dir, output.id) / "files", ignore_errors=True)
    session.flush()
    audit.append(
        "access.output.void",
        actor=actor.ref,
        details={"permit": permit.id, "output": output.id, "reason": "donation_withdrawn"},
    )
    return True


def review_release(
    session: Session,
    actor: Actor,
    output: AccessOutput,
    *,
    approve: bool,
    reason: str = "",
    data_dir: Path,
) -> AccessOutput:
    """The second person's review: release (automatic checks passed) or reject."""
    if actor.role != "data_steward":
        raise PermissionDenied("only a data steward reviews outputs for release")
    if actor.id == output.requested_by:
        raise PermissionDenied(
            "a second person reviews the release: you asked for this output's release"
        )
    if output.status == "void":
        raise PermissionDenied(f"output {output.id} is void: {output.review_reason}")
    if output.status != "checked":
        raise InputError(f"a {output.status} output cannot be reviewed")
    reason = reason.strip()
    if not approve and not reason:
        raise FormError({"reason": "give a reason for refusing the release"})
    if len(reason) > 4000:
        raise FormError(
            {"reason": FieldMessage("is too long (at most {max_length} characters)",
                                    {"max_length": 4000})}
        )  # fmt: skip
    permit = session.get(Permit, output.permit_id)
    assert permit is not None  # a foreign key
    if approve:
        if not output.checks.get("passed"):
            raise PermissionDenied("the automatic checks failed: this output cannot be released")
        if permit_state(permit) != "active":
            raise PermissionDenied(f"the permit is {permit_state(permit)}: nothing is released")
        _refuse_withdrawn(session, output, permit, data_dir)
    at = clock.now()
    output.status = "released" if approve else "rejected"
    output.reviewed_by, output.reviewed_at = actor.id, at
    output.review_reason = reason or None
    if approve:
        output.released_at = at
    session.flush()
    audit.append(
        "access.output.release" if approve else "access.output.reject",
        actor=actor.ref,
        details={"permit": permit.id, "output": output.id},
    )
    return output


def outputs_of(session: Session, permit: Permit) -> list[AccessOutput]:
    return list(
        session.scalars(
            select(AccessOutput)
            .where(AccessOutput.permit_id == permit.id)
            .order_by(AccessOutput.id.desc())
        )
    )


def downloadable(
    session: Session, actor: Actor, output: AccessOutput, name: str, data_dir: Path
) -> Path:
    """The path of one released file for the permit's holder or named people (audited);
    anything else is refused."""
    permit = session.get(Permit, output.permit_id)
    assert permit is not None
    if not holds(actor, permit):
        raise NotFoundError(f"output {output.id} does not exist")
    if output.status == "void":
        raise PermissionDenied(f"output {output.id} is void: {output.review_reason}")
    if output.status != "released":
        raise PermissionDenied(f"output {output.id} is {output.status}, not released")
    if permit_state(permit) != "active":
        raise PermissionDenied(f"the permit is {permit_state(permit)}: nothing can be downloaded")
    if name not in {f["name"] for f in output.files}:
        raise NotFoundError(f"output {output.id} has no file {name!r}")
    _refuse_withdrawn(session, output, permit, data_dir)
    audit.append(
        "access.output.download",
        actor=actor.ref,
        details={"permit": permit.id, "output": output.id, "file": name},
    )
    return output_dir(data_dir, output.id) / "files" / name

"""Record-level extracts of a permit's cohort and variables, with a data dictionary.

* pseudonymised: every ``person_id`` is replaced by the permit's pseudonym
  (``privacy.pseudonym.permit_pseudonyms`` with the permit's own key), so one person gets
  different ids under different permits; rows are ordered by that pseudonym, so the order
  does not give the region's ids away either. One file per event table asked for.
* anonymised: the person variables only, without any id, made k-anonymous by the anonymizer
  (``privacy.anonymize``: its public API, with every variable a quasi-identifier and the
  hierarchy ``variables`` gives it).

Files are Parquet or CSV; ``dictionary.json`` describes every file and column. The files are
written to the output's folder; nothing leaves until output checking released them.
"""

from __future__ import annotations

__all__ = ["Extract", "write_extract"]

import csv
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from brygga.access.people import People
from brygga.access.variables import EVENT_TABLES, PERSON_VARIABLES, dictionary
from brygga.privacy.anonymize import anonymize, parse_config
from brygga.privacy.pseudonym import permit_pseudonyms
from brygga.records.store import Region


@dataclass
class Extract:
    files: list[Path]
    rows: dict[str, int]
    quasi_identifiers: list[str]  # the person file's columns the k check looks at
    anonymiser: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def _person_columns(people: People, names: list[str]) -> dict[str, list[Any]]:
    values: dict[str, Any] = {
        "sex": list(people.sex),
        "year_of_birth": [int(y) for y in people.year_of_birth],
        "age_at_index": [int(a) for a in people.age],
        "municipality_code": [None if m == "unknown" else m for m in people.municipality],
        "deprivation_quintile": [None if d == "unknown" else int(d) for d in people.deprivation],
        "death_date": list(people.death_date),
    }
    return {n: values[n] for n in names if n in PERSON_VARIABLES}


def _write(table: pa.Table, folder: Path, name: str, fmt: str) -> Path:
    path = folder / f"{name}.{fmt}"
    if fmt == "parquet":
        pq.write_table(table, path, compression="zstd")
    else:
        _write_csv(table, path)
    return path


def _write_csv(table: pa.Table, path: Path) -> None:
    """Unquoted, as most readers expect (arrow would quote every name and string); values are
    quoted only if one needs it. The header goes through the csv module for the same reason."""
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerow(table.column_names)
    header = path.stat().st_size
    for style in ("none", "needed"):
        try:
            with path.open("ab") as f:
                options = pacsv.WriteOptions(include_header=False, quoting_style=style)
                pacsv.write_csv(table, f, options)
            return
        except pa.ArrowInvalid:
            with path.open("ab") as f:
                f.truncate(header)


def write_extract(
    people: People,
    region: Region,
    names: list[str],
    *,
    data_form: str,
    fmt: str,
    key: bytes,
    folder: Path,
    k: int,
    suppression: float,
) -> Extract:
    """Write the extract of ``people`` into ``folder`` (created); returns what was written."""
    folder.mkdir(parents=True, exist_ok=True)
    if data_form == "anonymised":
        extract = _anonymised(people, names, fmt, folder, k, suppression)
    else:
        extract = _pseudonymised(people, region, names, fmt, key, folder)
    path = folder / "dictionary.json"
    doc = {
        "form": data_form,
        "format": fmt,
        "index_date": people.index_date.isoformat(),
        "files": dictionary(names, pseudonymised=data_form == "pseudonymised"),
    }
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n")
    extract.files.append(path)
    return extract


def _pseudonymised(
    people: People, region: Region, names: list[str], fmt: str, key: bytes, folder: Path
) -> Extract:
    pseudonyms = permit_pseudonyms(people.person_id, key)
    order = np.argsort(pseudonyms, kind="stable")
    files, rows = [], {}
    person = _person_columns(people, names)
    qis = list(person)
    if person:
        data = {"person_id": pa.array(pseudonyms[order], pa.int64())}
        for column, values in person.items():
            data[column] = pa.array([values[i] for i in order])
        files.append(_write(pa.table(data), folder, "person", fmt))
        rows["person"] = len(people)
    mapping = pa.table({"old_id": people.person_id, "new_id": pseudonyms})
    con = region.duckdb()
    try:
        con.register("permit_map", mapping)
        for name in names:
            event = EVENT_TABLES.get(name)
            if event is None or event.table not in region.tables():
                continue
            columns = ", ".join(f"t.{c}" for c in event.columns)
            table = con.sql(
                f"SELECT m.new_id AS person_id, {columns} FROM {event.table} t "
                f"JOIN permit_map m ON t.person_id = m.old_id "
                f"ORDER BY m.new_id, {', '.join(f't.{c}' for c in event.columns[:1])}"
            ).to_arrow_table()
            files.append(_write(table, folder, name, fmt))
            rows[name] = table.num_rows
    finally:
        con.close()
    return Extract(files, rows, qis)


def _anonymised(
    people: People, names: list[str], fmt: str, folder: Path, k: int, suppression: float
) -> Extract:
    person = _person_columns(people, names)
    config = parse_config(
        {
            "k": k,
            "suppression_limit": suppression,
            "quasi_identifiers": [
                {"column": c, "hierarchy": PERSON_VARIABLES[c].hierarchy} for c in person
            ],
        },
        "the permit's anonymisation",
    )
    with tempfile.TemporaryDirectory(prefix="brygga-anon-") as tmp:
        source = Path(tmp) / "person.csv"
        with source.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(list(person))
            for i in range(len(people)):
                writer.writerow(["" if v[i] is None else v[i] for v in person.values()])
        target = folder / "person.csv"
        result = anonymize(source, config, target, config_dir=tmp)
    files = [target]
    if fmt == "parquet":
        table = pacsv.read_csv(
            target,
            convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in person}),
        )
        files = [_write(table, folder, "person", "parquet")]
        target.unlink()
    summary = result.summary()
    return Extract(
        files,
        {"person": summary["written"]},
        list(person),
        anonymiser={
            "k": k,
            "suppressed": summary["suppressed"],
            "transformation": summary["transformation"],
            "metrics": summary["metrics"],
        },
    )

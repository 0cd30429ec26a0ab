"""The variables an access application may ask for, and the extract's data dictionary.

Two kinds:

* person variables, one row per person in the extract's ``person`` file (sex, year of birth,
  age at the index date, municipality, deprivation quintile, date of death);
* event tables, one file each with the person's rows of that OMOP table, restricted to the
  columns named here (codes, dates, values; never free text or a source identifier).

Only person variables can be anonymised (the anonymizer works on one table of one row per
person); each is then a quasi-identifier with the hierarchy given here.
"""

from __future__ import annotations

__all__ = [
    "ANONYMISABLE",
    "EVENT_TABLES",
    "PERSON_VARIABLES",
    "VARIABLES",
    "check_variables",
    "dictionary",
]

from dataclasses import dataclass
from typing import Any

from brygga.forms import FieldMessage
from brygga.records import schema


@dataclass(frozen=True)
class PersonVariable:
    name: str
    type: str
    doc: str
    hierarchy: dict[str, Any]  # the anonymizer's automatic hierarchy for it


@dataclass(frozen=True)
class EventTable:
    name: str
    table: str
    columns: tuple[str, ...]


PERSON_VARIABLES: dict[str, PersonVariable] = {
    v.name: v
    for v in (
        PersonVariable("sex", "string", "female, male or unknown.", {"type": "flat"}),
        PersonVariable(
            "year_of_birth", "int32", "Year of birth.", {"type": "interval", "widths": [5, 10, 20]}
        ),
        PersonVariable(
            "age_at_index",
            "int32",
            "Age in completed years on the cohort's index date.",
            {"type": "interval", "widths": [5, 10, 20]},
        ),
        PersonVariable(
            "municipality_code",
            "string",
            "Municipality of residence, SCB kommunkod.",
            {"type": "municipality"},
        ),
        PersonVariable(
            "deprivation_quintile",
            "int8",
            "Area-based deprivation, 1 least to 5 most deprived; empty if unknown.",
            {"type": "flat"},
        ),
        PersonVariable("death_date", "date", "Date of death; empty if alive.", {"type": "date"}),
    )
}

EVENT_TABLES: dict[str, EventTable] = {
    e.name: e
    for e in (
        EventTable(
            "conditions",
            "condition_occurrence",
            ("condition_start_date", "condition_source_value", "condition_source_vocabulary"),
        ),
        EventTable(
            "drugs",
            "drug_exposure",
            (
                "drug_exposure_start_date",
                "drug_exposure_end_date",
                "drug_source_value",
                "drug_source_vocabulary",
                "quantity",
                "days_supply",
            ),
        ),
        EventTable(
            "measurements",
            "measurement",
            (
                "measurement_date",
                "measurement_source_value",
                "measurement_source_vocabulary",
                "value_as_number",
                "unit_source_value",
            ),
        ),
        EventTable(
            "procedures",
            "procedure_occurrence",
            ("procedure_date", "procedure_source_value", "procedure_source_vocabulary"),
        ),
        EventTable(
            "visits", "visit_occurrence", ("visit_start_date", "visit_end_date", "visit_concept_id")
        ),
        EventTable(
            "observations",
            "observation",
            (
                "observation_date",
                "observation_source_value",
                "observation_source_vocabulary",
                "value_as_number",
            ),
        ),
    )
}

VARIABLES = (*PERSON_VARIABLES, *EVENT_TABLES)
ANONYMISABLE = tuple(PERSON_VARIABLES)


def check_variables(names: list[str], data_form: str) -> str | None:
    """What is wrong with the variables asked for (a message for the form), or None."""
    if not names:
        return "choose at least one variable"
    unknown = [n for n in names if n not in VARIABLES]
    if unknown:
        return FieldMessage(
            "unknown variable {name}; one of {known}",
            {"name": unknown[0], "known": ", ".join(VARIABLES)},
        )
    if len(set(names)) != len(names):
        return "a variable is listed twice"
    if data_form == "anonymised":
        events = [n for n in names if n in EVENT_TABLES]
        if events:
            return FieldMessage(
                "{name} is record-level event data and cannot be anonymised; choose "
                "pseudonymised data or only person variables",
                {"name": events[0]},
            )
    return None


def dictionary(names: list[str], *, pseudonymised: bool) -> list[dict[str, Any]]:
    """The data dictionary of an extract of ``names``: every file and column with its type
    and meaning (from ``records.schema`` for event columns)."""
    person = [
        {"name": "person_id", "type": "int64",
         "description": "Pseudonym of the person under this permit only (the same person has "
                        "another id under every other permit)."}
    ] if pseudonymised else []  # fmt: skip
    person += [
        {"name": v.name, "type": v.type, "description": v.doc}
        for n in names
        if (v := PERSON_VARIABLES.get(n)) is not None
    ]
    files = [{"file": "person", "columns": person}] if person else []
    for n in names:
        event = EVENT_TABLES.get(n)
        if event is None:
            continue
        table = schema.table(event.table)
        columns = [
            {
                "name": "person_id",
                "type": "int64",
                "description": "The person's pseudonym under this permit (see person).",
            }
        ]
        columns += [
            {"name": c, "type": str(table.column(c).type), "description": table.column(c).doc}
            for c in event.columns
        ]  # fmt: skip
        files.append({"file": n, "table": event.table, "columns": columns})
    return files

"""The regional health-record model: every table and column, defined once.

The tables follow the OMOP Common Data Model v5.4 (same table and column names), restricted to
the columns Brygga uses. Columns that OMOP does not have are marked ``extension=True`` and say
why they exist. The Markdown data-model documentation (``docs/data-model.md``) is generated from
this module by ``brygga schema-docs``; a test checks that it is current.

Swedish source codes live in the ``*_source_value`` columns, with their code system in the
``*_source_vocabulary`` extension column (ICD10 = ICD-10-SE, ATC, NPU, LOINC, KVA, SNOMED). The
``*_concept_id`` columns hold an OMOP concept id where one is known, else 0.

Identity (personnummer, name, address, contact) is *not* part of a region: see ``IDENTITY``,
which describes the separate identities file the generator writes beside a region.
"""

from __future__ import annotations

__all__ = [
    "CARE_SITE",
    "CONCEPT",
    "CONCEPT_ANCESTOR",
    "CONCEPT_TABLE",
    "CONDITION_OCCURRENCE",
    "CORE_TABLES",
    "DATE",
    "DEATH",
    "DRUG_EXPOSURE",
    "ID",
    "IDENTITY",
    "INT",
    "LOCATION",
    "MEASUREMENT",
    "NUMBER",
    "OBSERVATION",
    "OBSERVATION_PERIOD",
    "PERSON",
    "PERSON_KEY",
    "PROCEDURE_OCCURRENCE",
    "SCHEMA_VERSION",
    "SMALL",
    "TABLES",
    "TEXT",
    "VISIT_OCCURRENCE",
    "C",
    "Column",
    "Table",
    "render_markdown",
    "table",
]

from dataclasses import dataclass, field

import pyarrow as pa

SCHEMA_VERSION = 1

# Arrow types used throughout; named so the docs read well.
ID = pa.int64()
CONCEPT = pa.int32()
INT = pa.int32()
SMALL = pa.int8()
DATE = pa.date32()
NUMBER = pa.float64()
TEXT = pa.string()


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    required: bool
    doc: str
    extension: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    doc: str
    columns: tuple[Column, ...]
    # Physical sort order for event tables: (code, person, date) lets engines skip row groups.
    sort_keys: tuple[str, ...] = ()
    # Tables that only an OMOP import provides (vocabulary tables).
    vocabulary: bool = False
    # Extension tables a region may lack (older regions still open without them).
    optional: bool = False
    person_column: str | None = "person_id"
    date_column: str | None = None
    code_column: str | None = None
    vocabulary_column: str | None = None
    concept_column: str | None = None
    _index: dict[str, Column] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({c.name: c for c in self.columns})

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        return self._index[name]

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.type, nullable=not c.required) for c in self.columns])


def C(name: str, type_: pa.DataType, doc: str, *, req: bool = False, ext: bool = False) -> Column:
    return Column(name, type_, req, doc, ext)


def _event(name: str, prefix: str, date_name: str, doc: str, extra: tuple[Column, ...]) -> Table:
    """An OMOP event table: id, person, concept, date, type, visit, source code + vocabulary."""
    columns = (
        C(f"{name}_id", ID, "Row identifier, unique within the table.", req=True),
        C("person_id", ID, "Pseudonymous person identifier.", req=True),
        C(f"{prefix}_concept_id", CONCEPT, "OMOP standard concept id, 0 when unknown.", req=True),
        C(date_name, DATE, "Date of the event.", req=True),
        *extra,
        C("visit_occurrence_id", ID, "The visit during which it was recorded."),
        C(f"{prefix}_source_value", TEXT, "The code as recorded at the source."),
        C(
            f"{prefix}_source_vocabulary",
            TEXT,
            "Code system of the source value (ICD10, ATC, NPU, LOINC, KVA, SNOMED, ...).",
            ext=True,
        ),
        C(f"{prefix}_source_concept_id", CONCEPT, "OMOP concept id of the source code, or 0."),
    )
    return Table(
        name=name,
        doc=doc,
        columns=columns,
        sort_keys=(f"{prefix}_source_value", "person_id", date_name),
        date_column=date_name,
        code_column=f"{prefix}_source_value",
        vocabulary_column=f"{prefix}_source_vocabulary",
        concept_column=f"{prefix}_concept_id",
    )


PERSON = Table(
    "person",
    "One row per person ever resident in the region during the record period.",
    (
        C("person_id", ID, "Pseudonymous person identifier.", req=True),
        C("gender_concept_id", CONCEPT, "8507 male, 8532 female, 0 unknown.", req=True),
        C("year_of_birth", INT, "Year of birth.", req=True),
        C("month_of_birth", INT, "Month of birth (1-12)."),
        C("day_of_birth", INT, "Day of birth (1-31)."),
        C("race_concept_id", CONCEPT, "Not recorded in Sweden: 0.", req=True),
        C("ethnicity_concept_id", CONCEPT, "Not recorded in Sweden: 0.", req=True),
        C("location_id", ID, "Municipality of residence (see location)."),
        C("care_site_id", ID, "Listed primary-care centre (vårdcentral)."),
        C("person_source_value", TEXT, "Source identifier; never a personnummer in a region."),
        C("gender_source_value", TEXT, "M or F as recorded."),
        C(
            "municipality_code",
            TEXT,
            "Municipality of (last) residence, SCB kommunkod (4 digits, e.g. 1280 Malmö).",
            ext=True,
        ),
        C(
            "deprivation_quintile",
            SMALL,
            "Area-based socioeconomic deprivation, 1 least to 5 most deprived; null if unknown.",
            ext=True,
        ),
    ),
)

OBSERVATION_PERIOD = Table(
    "observation_period",
    "Spans of time during which the person's care is recorded in the region.",
    (
        C("observation_period_id", ID, "Row identifier.", req=True),
        C("person_id", ID, "Pseudonymous person identifier.", req=True),
        C("observation_period_start_date", DATE, "First day covered.", req=True),
        C("observation_period_end_date", DATE, "Last day covered.", req=True),
        C("period_type_concept_id", CONCEPT, "32817 EHR.", req=True),
    ),
    date_column="observation_period_start_date",
)

VISIT_OCCURRENCE = Table(
    "visit_occurrence",
    "Contacts with care: primary-care visits, outpatient visits, hospital stays.",
    (
        C("visit_occurrence_id", ID, "Row identifier.", req=True),
        C("person_id", ID, "Pseudonymous person identifier.", req=True),
        C(
            "visit_concept_id",
            CONCEPT,
            "9202 outpatient, 9201 inpatient, 9203 emergency.",
            req=True,
        ),
        C("visit_start_date", DATE, "First day.", req=True),
        C("visit_end_date", DATE, "Last day."),
        C("visit_type_concept_id", CONCEPT, "32817 EHR.", req=True),
        C("care_site_id", ID, "Where it took place."),
        C("visit_source_value", TEXT, "Source contact type (e.g. 'primary', 'inpatient')."),
    ),
    sort_keys=("person_id", "visit_start_date"),
    date_column="visit_start_date",
    concept_column="visit_concept_id",
)

CONDITION_OCCURRENCE = _event(
    "condition_occurrence",
    "condition",
    "condition_start_date",
    "Diagnoses recorded at visits (ICD-10-SE in the source columns).",
    (
        C("condition_end_date", DATE, "End date, when known."),
        C("condition_type_concept_id", CONCEPT, "32817 EHR.", req=True),
    ),
)

DRUG_EXPOSURE = _event(
    "drug_exposure",
    "drug",
    "drug_exposure_start_date",
    "Drug dispensings and prescriptions (ATC in the source columns).",
    (
        C("drug_exposure_end_date", DATE, "Last day covered by the dispensing."),
        C("drug_type_concept_id", CONCEPT, "32869 pharmacy claim / dispensing.", req=True),
        C("quantity", NUMBER, "Number of units dispensed."),
        C("days_supply", INT, "Days covered."),
    ),
)

MEASUREMENT = _event(
    "measurement",
    "measurement",
    "measurement_date",
    "Laboratory results and clinical measurements (NPU or LOINC in the source columns).",
    (
        C("measurement_type_concept_id", CONCEPT, "32817 EHR.", req=True),
        C("value_as_number", NUMBER, "Numeric result in the unit below."),
        C("value_as_concept_id", CONCEPT, "Categorical result, or 0."),
        C("unit_concept_id", CONCEPT, "OMOP unit concept id, or 0."),
        C("unit_source_value", TEXT, "Unit as recorded (mmol/mol, mmol/L, mmHg, ...)."),
        C("range_low", NUMBER, "Lower end of the laboratory's normal range, in the same unit."),
        C("range_high", NUMBER, "Upper end of the laboratory's normal range, in the same unit."),
    ),
)

OBSERVATION = _event(
    "observation",
    "observation",
    "observation_date",
    "Other clinical facts, e.g. smoking status (SNOMED in the source columns).",
    (
        C("observation_type_concept_id", CONCEPT, "32817 EHR.", req=True),
        C("value_as_number", NUMBER, "Numeric value, when any."),
        C("value_as_string", TEXT, "Text value, when any."),
        C("value_as_concept_id", CONCEPT, "Categorical value, or 0."),
    ),
)

PROCEDURE_OCCURRENCE = _event(
    "procedure_occurrence",
    "procedure",
    "procedure_date",
    "Procedures (KVÅ in the source columns).",
    (C("procedure_type_concept_id", CONCEPT, "32817 EHR.", req=True),),
)

DEATH = Table(
    "death",
    "Deaths (from the cause-of-death register when linked).",
    (
        C("person_id", ID, "Pseudonymous person identifier.", req=True),
        C("death_date", DATE, "Date of death.", req=True),
        C("death_type_concept_id", CONCEPT, "32817 EHR / 32815 death certificate.", req=True),
        C("cause_concept_id", CONCEPT, "Underlying cause as OMOP concept, or 0."),
        C("cause_source_value", TEXT, "Underlying cause as recorded (ICD-10-SE)."),
        C("cause_source_vocabulary", TEXT, "Code system of the cause (ICD10).", ext=True),
    ),
    date_column="death_date",
)

LOCATION = Table(
    "location",
    "Places: one row per municipality (kommun).",
    (
        C("location_id", ID, "Row identifier.", req=True),
        C("city", TEXT, "Municipality name."),
        C("county", TEXT, "County (län) name."),
        C("location_source_value", TEXT, "SCB kommunkod."),
        C("country_source_value", TEXT, "SE."),
    ),
    person_column=None,
)

CARE_SITE = Table(
    "care_site",
    "Care units: primary-care centres and hospitals.",
    (
        C("care_site_id", ID, "Row identifier.", req=True),
        C("care_site_name", TEXT, "Name."),
        C("place_of_service_concept_id", CONCEPT, "OMOP place of service, or 0."),
        C("location_id", ID, "Municipality."),
        C("care_site_source_value", TEXT, "Source identifier of the unit."),
        C("place_of_service_source_value", TEXT, "'primary care' or 'hospital'."),
    ),
    person_column=None,
)

CONCEPT_TABLE = Table(
    "concept",
    "OMOP vocabulary concepts (only when imported from an OMOP export).",
    (
        C("concept_id", CONCEPT, "Concept id.", req=True),
        C("concept_name", TEXT, "Name.", req=True),
        C("domain_id", TEXT, "Domain.", req=True),
        C("vocabulary_id", TEXT, "Vocabulary.", req=True),
        C("concept_class_id", TEXT, "Class.", req=True),
        C("standard_concept", TEXT, "'S' standard, 'C' classification, else empty."),
        C("concept_code", TEXT, "Code within its vocabulary.", req=True),
        C("valid_start_date", DATE, "Valid from.", req=True),
        C("valid_end_date", DATE, "Valid until.", req=True),
        C("invalid_reason", TEXT, "Why invalid, if it is."),
    ),
    vocabulary=True,
    person_column=None,
)

CONCEPT_ANCESTOR = Table(
    "concept_ancestor",
    "OMOP concept hierarchy (only when imported): every ancestor-descendant pair.",
    (
        C("ancestor_concept_id", CONCEPT, "Ancestor.", req=True),
        C("descendant_concept_id", CONCEPT, "Descendant.", req=True),
        C("min_levels_of_separation", INT, "Shortest path length.", req=True),
        C("max_levels_of_separation", INT, "Longest path length.", req=True),
    ),
    vocabulary=True,
    person_column=None,
)

PERSON_KEY = Table(
    "person_key",
    "Record keys for the Cell Key Method (disclosure control, docs/privacy.md): one random key "
    "per person, drawn when the region is written. Optional: a region without it cannot use "
    "the cell key method.",
    (
        C("person_id", ID, "Pseudonymous person identifier.", req=True),
        C("record_key", NUMBER, "Random number in [0, 1); never shown.", req=True, ext=True),
    ),
    optional=True,
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        PERSON,
        OBSERVATION_PERIOD,
        VISIT_OCCURRENCE,
        CONDITION_OCCURRENCE,
        DRUG_EXPOSURE,
        MEASUREMENT,
        OBSERVATION,
        PROCEDURE_OCCURRENCE,
        DEATH,
        LOCATION,
        CARE_SITE,
        CONCEPT_TABLE,
        CONCEPT_ANCESTOR,
        PERSON_KEY,
    )
}

# Tables every region must have (vocabulary and optional extension tables are not required).
CORE_TABLES = [name for name, t in TABLES.items() if not t.vocabulary and not t.optional]

# Identity: kept *outside* a region, in the operational side. Described here so that it too is
# defined once; ``synth`` writes it as ``<region>.identities.parquet``.
IDENTITY = Table(
    "identity",
    "Identifiable data of a person. Never part of a region; loaded into the operational DB.",
    (
        C("person_id", ID, "The pseudonymous id used in the region.", req=True),
        C("personnummer", TEXT, "Swedish personal identity number, YYYYMMDD-NNNC.", req=True),
        C("given_name", TEXT, "Given name.", req=True),
        C("family_name", TEXT, "Family name.", req=True),
        C("street_address", TEXT, "Street address."),
        C("postal_code", TEXT, "Postal code (NNN NN)."),
        C("post_town", TEXT, "Post town."),
        C("municipality_code", TEXT, "SCB kommunkod."),
        C("phone", TEXT, "Mobile phone number."),
        C("email", TEXT, "E-mail address."),
    ),
)


def table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        from brygga.errors import InputError

        raise InputError(f"unknown table {name!r}; known tables: {', '.join(TABLES)}") from None


def render_markdown() -> str:
    """The data-model documentation, generated from the definitions above."""
    lines = [
        "# Regional health-record model",
        "",
        "<!-- Generated by `brygga schema-docs` from src/brygga/records/schema.py. Do not edit. -->",
        "",
        f"Schema version {SCHEMA_VERSION}. OMOP CDM v5.4 table and column names; columns marked",
        "*extension* are Brygga's own. A region is a folder with one Parquet file (or a folder of",
        "Parquet parts) per table and a `manifest.json`. Required columns are never null.",
        "",
    ]
    for t in (*TABLES.values(), IDENTITY):
        lines += [f"## `{t.name}`", "", t.doc, ""]
        if t.sort_keys:
            lines += [f"Physical sort order: {', '.join(f'`{k}`' for k in t.sort_keys)}.", ""]
        lines += ["| column | type | required | description |", "|---|---|---|---|"]
        for c in t.columns:
            doc = c.doc + (" *(extension)*" if c.extension else "")
            lines.append(f"| `{c.name}` | {c.type} | {'yes' if c.required else ''} | {doc} |")
        lines.append("")
    return "\n".join(lines)

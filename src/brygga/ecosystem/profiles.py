"""The profile document: what a directory entry says about itself, as a region writes it.

A region adds its own entries with ``brygga ecosystem import FILE``; the package's seed
(``seed.yaml``) is written in the same form. Documents are read with the one loader
(``brygga.documents``), so errors name the file, the line and the field path, and the whole
document is checked before anything is written.

Vocabularies (types, areas, support kinds, price models, regions, languages) are keys; their
Swedish and English labels are in the ``eco`` message catalogue (``eco_area_atmp`` ...).
"""

from __future__ import annotations

__all__ = [
    "LANGUAGES",
    "MAX_ENTRIES",
    "REGIONS",
    "SUPPORT_KINDS",
    "TECHNOLOGY_AREAS",
    "THERAPY_AREAS",
    "Bilingual",
    "BilingualList",
    "DirectoryDocument",
    "Profile",
    "Source",
    "TrlRange",
    "check_document",
    "load_document",
]

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from brygga.documents import Document, describe, read_file, validate
from brygga.ecosystem.models import ENTRY_TYPES, PRICE_MODELS
from brygga.errors import DocumentError

MAX_ENTRIES = 5_000  # one region's directory is a few hundred; the benchmark uses 1,000

THERAPY_AREAS = (
    "cardiovascular",
    "diabetes",
    "respiratory",
    "oncology",
    "haematology",
    "neurology",
    "mental_health",
    "kidney",
    "musculoskeletal",
    "infection",
    "children",
    "healthy_ageing",
    "oral_health",
    "rare_diseases",
)
TECHNOLOGY_AREAS = (
    "atmp",
    "pharmaceuticals",
    "medtech",
    "diagnostics",
    "digital_health",
    "ai",
    "health_data",
    "genomics",
    "structural_biology",
    "biobank",
    "imaging",
    "vaccines",
    "biomaterials",
    "precision_medicine",
    "prevention",
    "clinical_trials",
    "manufacturing",
)
# What a support offering does (the list, and competence programmes).
SUPPORT_KINDS = (
    "incubation",
    "tech_transfer",
    "regulatory",
    "funding",
    "investors",
    "establishment",
    "clinical_trials",
    "networks",
    "education",
    "data_access",
)
REGIONS = ("skane", "stockholm", "national", "denmark", "international")
LANGUAGES = ("sv", "en", "da", "de", "fr", "fi", "no")

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Bilingual(_Strict):
    """A text in Swedish and English (both required: the directory is read in both)."""

    sv: str = Field(min_length=1, max_length=4000)
    en: str = Field(min_length=1, max_length=4000)


class BilingualList(_Strict):
    sv: list[str] = Field(default_factory=list, max_length=50)
    en: list[str] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _same_length(self) -> BilingualList:
        if len(self.sv) != len(self.en):
            raise ValueError("sv and en must list the same services (one translation each)")
        return self


class TrlRange(_Strict):
    """Technology readiness levels the offering serves (1-9, EU Horizon definitions)."""

    min: int = Field(ge=1, le=9)
    max: int = Field(ge=1, le=9)

    @model_validator(mode="after")
    def _ordered(self) -> TrlRange:
        if self.min > self.max:
            raise ValueError("min must not be greater than max")
        return self


class Source(_Strict):
    """Where the entry comes from: a document and the passage (a quote or a section)."""

    document: str = Field(min_length=1, max_length=300)
    section: str | None = Field(default=None, max_length=300)
    quote: str | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _passage(self) -> Source:
        if not (self.section or self.quote):
            raise ValueError("name the passage: a section or a quote")
        return self


class Profile(_Strict):
    """One directory entry's profile."""

    id: str = Field(min_length=2, max_length=80)
    type: Literal[ENTRY_TYPES]  # type: ignore[valid-type]
    name: Bilingual
    description: Bilingual
    services: BilingualList = Field(default_factory=BilingualList)
    support_kinds: list[Literal[SUPPORT_KINDS]] = Field(default_factory=list, max_length=20)  # type: ignore[valid-type]
    access: Bilingual | None = None
    price_model: Literal[PRICE_MODELS] = "on_request"  # type: ignore[valid-type]
    languages: list[Literal[LANGUAGES]] = Field(default_factory=lambda: ["sv", "en"], min_length=1)  # type: ignore[valid-type]
    trl: TrlRange | None = None
    therapy_areas: list[Literal[THERAPY_AREAS]] = Field(default_factory=list, max_length=20)  # type: ignore[valid-type]
    technology_areas: list[Literal[TECHNOLOGY_AREAS]] = Field(default_factory=list, max_length=20)  # type: ignore[valid-type]
    sme_eligible: bool = False
    region: Literal[REGIONS]  # type: ignore[valid-type]
    location: str = Field(default="", max_length=200)
    cross_border: bool = False
    contact_role: Bilingual
    contact_channel: str = Field(default="", max_length=300)
    response_days: int = Field(default=5, ge=1, le=60)
    source: Source

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError("must be lower-case letters, digits and single hyphens (max-iv)")
        return value

    @field_validator("contact_channel")
    @classmethod
    def _no_personal_address(cls, value: str) -> str:
        # Profiles name a role, not a person: a personal e-mail address would be published
        # and outlive the person's job. A functional web form or page is the channel.
        if "@" in value:
            raise ValueError("give a web page or form, not an e-mail address (name a role)")
        return value


class DirectoryDocument(_Strict):
    """A file of profiles: ``entries: [...]``."""

    entries: list[Profile] = Field(min_length=1, max_length=MAX_ENTRIES)


def load_document(path: str | Path) -> DirectoryDocument:
    """Read and validate a directory file; one DocumentError names every problem."""
    return check_document(read_file(path, "directory"))


def check_document(document: Document) -> DirectoryDocument:
    """Validate a decoded directory document, ids unique within it (named by line)."""
    parsed = validate(DirectoryDocument, document, "directory")
    first: dict[str, int] = {}
    found = []
    for i, entry in enumerate(parsed.entries):
        if entry.id in first:
            path = f"entries[{i}].id"
            found.append(
                (
                    path,
                    document.line_of(("entries", i, "id")),
                    f"repeats entries[{first[entry.id]}]",
                )
            )
        first.setdefault(entry.id, i)
    if found:
        lines = [describe(p) for p in found]
        raise DocumentError(
            f"{document.source}: invalid directory"
            + ("\n  " if len(lines) > 1 else ": ")
            + "\n  ".join(lines),
            found,
        )
    return parsed

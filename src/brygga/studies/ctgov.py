"""Import the structured parts of a ClinicalTrials.gov API v2 study record.

What is imported (and nothing else): identifiers (NCT id), brief title and summary (English),
lead sponsor, phase, target enrolment, recruitment period, and the structured eligibility
fields: sex, minimum and maximum age, healthy volunteers, and the listed conditions mapped to
ICD-10 code prefixes where a term is recognised. The free-text eligibility criteria are kept for
the researcher to translate; they are not parsed. Conditions that no term matches are listed in
``unmapped`` so the researcher sees what the import left out.
"""

from __future__ import annotations

__all__ = [
    "CONDITION_TERMS",
    "PHASES",
    "Imported",
    "import_record",
    "load_records",
    "map_conditions",
    "records_from_text",
]

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from brygga import documents
from brygga.cohort.criteria import Criteria, parse_criteria
from brygga.errors import InputError, NotFoundError

# (pattern, ICD-10 prefixes, area). First match wins, so specific terms come before generic.
CONDITION_TERMS: tuple[tuple[re.Pattern[str], tuple[str, ...], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), codes, area)
    for p, codes, area in (
        (r"promyelocytic", ("C924",), "haematology"),
        (r"myelomonocytic", ("C931",), "haematology"),
        (r"\bacute myel|\bAML\b|acute myelogenous|leukemia, myeloid, acute", ("C920",), "haematology"),
        (r"\bacute lympho|\bALL\b|lymphoblastic leuk|leukemia, lymphoblastic|lymphoid leuk", ("C910",), "haematology"),
        (r"chronic lympho|\bCLL\b", ("C911",), "haematology"),
        (r"chronic myel|\bCML\b", ("C921",), "haematology"),
        (r"prolymphocytic", ("C913", "C916"), "haematology"),
        (r"t-cell leuk", ("C915", "C916"), "haematology"),
        (r"myelodysplastic", ("D46",), "haematology"),
        (r"waldenstr", ("C880",), "haematology"),
        (r"hodgkin", ("C81", "C82", "C83", "C84", "C85"), "haematology"),
        (r"lymphoma", ("C81", "C82", "C83", "C84", "C85", "C86"), "haematology"),
        (r"myeloid (leuk|malign)|myelogenous|leukemia, myeloid", ("C92",), "haematology"),
        (r"leuka?emia|hematologic malign|haematologic malign", ("C91", "C92", "C93", "C94", "C95"), "haematology"),
        (r"type 1 diabetes", ("E10",), "diabetes"),
        (r"type 2 diabetes|diabetes mellitus", ("E11",), "diabetes"),
        (r"hypertension", ("I10",), "cardiovascular"),
        (r"heart failure", ("I50",), "cardiovascular"),
        (r"atrial fibrillation", ("I48",), "cardiovascular"),
        (r"myocardial infarction", ("I21",), "cardiovascular"),
        (r"stroke", ("I63",), "cardiovascular"),
        (r"\bCOPD\b|chronic obstructive", ("J44",), "respiratory"),
        (r"asthma", ("J45",), "respiratory"),
        (r"breast cancer|breast neoplasm", ("C50",), "oncology"),
        (r"prostate cancer", ("C61",), "oncology"),
        (r"alzheimer", ("G30",), "neurology"),
        (r"dementia", ("F00", "F01", "F02", "F03", "G30"), "neurology"),
        (r"depress", ("F32", "F33"), "mental_health"),
        (r"chronic kidney", ("N18",), "kidney"),
        (r"obesity", ("E66",), "diabetes"),
    )
)  # fmt: skip

PHASES = {
    "EARLY_PHASE1": "1",
    "PHASE1": "1",
    "PHASE2": "2",
    "PHASE3": "3",
    "PHASE4": "4",
    "NA": "not_applicable",
}
_AGE = re.compile(r"\s*(\d+)\s+(Year|Month|Week|Day|Hour|Minute)s?\s*", re.IGNORECASE)
_PER_YEAR = {
    "year": 1,
    "month": 12,
    "week": 52,
    "day": 365,
    "hour": 365 * 24,
    "minute": 365 * 24 * 60,
}


@dataclass
class Imported:
    nct_id: str
    title_en: str
    lay_summary_en: str
    sponsor: str
    phase: str
    area: str | None
    target_enrolment: int | None
    recruitment_start: date | None
    recruitment_end: date | None
    healthy_volunteers: bool
    criteria: Criteria
    criteria_text: str
    unmapped: list[str] = field(default_factory=list)


def _years(text: str | None, field_name: str) -> int | None:
    """'18 Years' -> 18, '6 Months' -> 0 (completed years, as the criteria language counts)."""
    if text is None:
        return None
    m = _AGE.fullmatch(text)
    if m is None:
        raise InputError(f"eligibilityModule.{field_name}: cannot read the age {text[:20]!r}")
    return min(int(m[1]) // _PER_YEAR[m[2].lower()], 150)


def _date(struct: dict[str, Any] | None) -> date | None:
    text = (struct or {}).get("date")
    if not text:
        return None
    parts = text.split("-")
    return date(int(parts[0]), int(parts[1]), int(parts[2]) if len(parts) > 2 else 1)


def map_conditions(conditions: list[str]) -> tuple[list[str], str | None, list[str]]:
    """Condition terms -> (ICD-10 prefixes, the first area, unmapped terms)."""
    prefixes: list[str] = []
    area = None
    unmapped = []
    for term in conditions:
        for pattern, codes, term_area in CONDITION_TERMS:
            if pattern.search(term):
                prefixes += [c for c in codes if c not in prefixes]
                area = area or term_area
                break
        else:
            unmapped.append(term)
    return prefixes, area, unmapped


def import_record(record: dict[str, Any]) -> Imported:
    """One study record (a dict with ``protocolSection``) -> the importable parts."""
    try:
        protocol = record["protocolSection"]
        ident = protocol["identificationModule"]
        nct_id = ident["nctId"]
    except (KeyError, TypeError):
        raise InputError(
            "not a ClinicalTrials.gov API v2 study record (protocolSection.identificationModule"
            ".nctId is missing)"
        ) from None
    status = protocol.get("statusModule", {})
    design = protocol.get("designModule", {})
    eligibility = protocol.get("eligibilityModule", {})
    conditions = protocol.get("conditionsModule", {}).get("conditions", [])
    prefixes, area, unmapped = map_conditions(conditions)
    demographics: dict[str, Any] = {}
    low = _years(eligibility.get("minimumAge"), "minimumAge")
    high = _years(eligibility.get("maximumAge"), "maximumAge")
    if low is not None or high is not None:
        demographics["age"] = {k: v for k, v in (("min", low), ("max", high)) if v is not None}
    sex = (eligibility.get("sex") or "ALL").upper()
    if sex in ("FEMALE", "MALE"):
        demographics["sex"] = [sex.lower()]
    document: dict[str, Any] = {
        "name": ident.get("briefTitle", nct_id)[:200],
        "demographics": demographics,
    }
    if prefixes:
        document["include"] = [{"condition": {"codes": prefixes, "vocabulary": "ICD10"}}]
    phases = [PHASES.get(p, "not_applicable") for p in design.get("phases", [])]
    sponsor = protocol.get("sponsorCollaboratorsModule", {}).get("leadSponsor", {})
    return Imported(
        nct_id=nct_id,
        title_en=ident.get("briefTitle", "")[:300],
        lay_summary_en=protocol.get("descriptionModule", {}).get("briefSummary", "")[:2000],
        sponsor=sponsor.get("name", "")[:200],
        phase="/".join(dict.fromkeys(phases)) or "not_applicable",
        area=area,
        target_enrolment=design.get("enrollmentInfo", {}).get("count"),
        recruitment_start=_date(status.get("startDateStruct")),
        recruitment_end=_date(status.get("primaryCompletionDateStruct")),
        healthy_volunteers=bool(eligibility.get("healthyVolunteers", False)),
        criteria=parse_criteria(document, f"{nct_id} (imported)"),
        criteria_text=eligibility.get("eligibilityCriteria", ""),
        unmapped=unmapped,
    )


def records_from_text(text: str, source: str) -> list[Any]:
    """One record, a list of records, or an API page ``{"studies": [...]}`` (JSON text)."""
    data = documents.parse_json(text, source, count_nodes=False).data
    if isinstance(data, dict) and "studies" in data:
        data = data["studies"]
    return data if isinstance(data, list) else [data]


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """Records from a file (see ``records_from_text``)."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"records file {str(path)!r} does not exist")
    return records_from_text(path.read_text(encoding="utf-8"), str(path))

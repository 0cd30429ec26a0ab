"""What a resident can report about their own health: conditions and medicines, by name.

Each entry maps a plain-language name (Swedish and English) to the code the health records use,
so self-reported data can answer the same criteria as the records (``studies/matching.py``).
Searching is by substring of either name, case-insensitive.
"""

from __future__ import annotations

__all__ = ["CONDITIONS", "MEDICINES", "Entry", "search"]

from dataclasses import dataclass

from brygga.records import codes


@dataclass(frozen=True)
class Entry:
    key: str
    vocabulary: str  # ICD10 or ATC
    code: str
    sv: str
    en: str

    def label(self, lang: str = "sv") -> str:
        return self.sv if lang == "sv" else self.en


# The conditions a resident can report: the common ones of the code catalogue.
_CONDITIONS = (
    "t2d", "t1d", "hypertension", "hyperlipidaemia", "mi", "stroke", "af", "heart_failure",
    "ckd", "copd", "asthma", "depression", "dementia", "alzheimer", "obesity", "breast_cancer",
    "prostate_cancer", "colorectal_cancer", "lung_cancer", "skin_cancer",
)  # fmt: skip

CONDITIONS: dict[str, Entry] = {
    key: Entry(
        key,
        "ICD10",
        codes.CONDITIONS[key].code,
        codes.code_name(codes.CONDITIONS[key], "sv"),
        codes.CONDITIONS[key].label,
    )
    for key in _CONDITIONS
}
MEDICINES: dict[str, Entry] = {
    key: Entry(key, "ATC", c.code, codes.code_name(c, "sv"), c.label)
    for key, c in codes.DRUGS.items()
    if key != "phenoxymethylpenicillin"  # a ten-day course is not a "regular medicine"
}


def search(catalogue: dict[str, Entry], text: str, limit: int = 10) -> list[Entry]:
    """Entries whose Swedish or English name contains ``text`` (case-insensitive)."""
    needle = text.strip().casefold()
    if not needle:
        return []
    hits = [e for e in catalogue.values() if needle in e.sv.casefold() or needle in e.en.casefold()]
    return sorted(hits, key=lambda e: (not e.sv.casefold().startswith(needle), e.sv))[:limit]

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


_CONDITION_SV = {
    "t2d": "Typ 2-diabetes",
    "t1d": "Typ 1-diabetes",
    "hypertension": "Högt blodtryck",
    "hyperlipidaemia": "Höga blodfetter",
    "mi": "Hjärtinfarkt",
    "stroke": "Stroke",
    "af": "Förmaksflimmer",
    "heart_failure": "Hjärtsvikt",
    "ckd": "Kronisk njursjukdom",
    "copd": "KOL",
    "asthma": "Astma",
    "depression": "Depression",
    "dementia": "Demens",
    "alzheimer": "Alzheimers sjukdom",
    "obesity": "Fetma",
    "breast_cancer": "Bröstcancer",
    "prostate_cancer": "Prostatacancer",
    "colorectal_cancer": "Tjocktarmscancer",
    "lung_cancer": "Lungcancer",
    "skin_cancer": "Malignt melanom",
}

CONDITIONS: dict[str, Entry] = {
    key: Entry(key, "ICD10", codes.CONDITIONS[key].code, sv, codes.CONDITIONS[key].label)
    for key, sv in _CONDITION_SV.items()
}
# Medicines: generic names are the same in Swedish, with a few exceptions.
_DRUG_SV = {"asa": "acetylsalicylsyra", "budesonide_formoterol": "budesonid och formoterol"}
MEDICINES: dict[str, Entry] = {
    key: Entry(key, "ATC", c.code, _DRUG_SV.get(key, c.label), c.label)
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

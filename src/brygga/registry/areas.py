"""Research (therapeutic) areas: what studies are about and what residents are interested in.

One list, Swedish and English labels, so a study's area and a resident's preferences are
always compared by key.
"""

from __future__ import annotations

__all__ = ["AREAS", "label"]

AREAS: dict[str, tuple[str, str]] = {
    "cardiovascular": ("Hjärta och kärl", "Heart and circulation"),
    "diabetes": ("Diabetes och ämnesomsättning", "Diabetes and metabolism"),
    "respiratory": ("Lungor och andning", "Lungs and breathing"),
    "oncology": ("Cancer", "Cancer"),
    "haematology": ("Blodsjukdomar", "Blood disorders"),
    "neurology": ("Hjärna, nerver och demens", "Brain, nerves and dementia"),
    "mental_health": ("Psykisk hälsa", "Mental health"),
    "kidney": ("Njurar", "Kidneys"),
    "musculoskeletal": ("Muskler och leder", "Muscles and joints"),
    "infection": ("Infektioner och vaccin", "Infections and vaccines"),
    "children": ("Barn och unga", "Children and young people"),
    "healthy_ageing": ("Friskt åldrande och prevention", "Healthy ageing and prevention"),
}


def label(key: str, lang: str = "sv") -> str:
    sv, en = AREAS[key]
    return sv if lang == "sv" else en

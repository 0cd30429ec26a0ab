"""Needs -> offerings: rank the directory's visible entries for a need and say why.

The ranking is BM25 (the Okapi weighting search engines use) over each entry's terms
(``text.Analyzer``: stems of both languages and synonym concepts), with the fields weighted
(name over services over description), plus the need's structured wishes: an area the entry
covers, a wanted type, a TRL inside the entry's range, a shared language, SME eligibility and
the region. Each reason is a sentence from the ``eco`` catalogue in the need's language.

The index is built once per directory version (``Index.build``) and kept by the platform's
``Ecosystem``; ranking 1,000 entries takes a few milliseconds (bench/ecosystem_match.py).
"""

from __future__ import annotations

__all__ = [
    "AREA_KEYS",
    "MAX_RESULTS",
    "Index",
    "NeedDocument",
    "Ranked",
    "load_need",
]

import heapq
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from brygga.documents import read_file, validate
from brygga.ecosystem.models import ENTRY_TYPES, Entry
from brygga.ecosystem.profiles import (
    LANGUAGES,
    REGIONS,
    SUPPORT_KINDS,
    TECHNOLOGY_AREAS,
    THERAPY_AREAS,
)
from brygga.ecosystem.text import CONCEPT, Analyzer, default_analyzer, detect_language, tokens
from brygga.messages import translate

MAX_RESULTS = 50
_K1, _B = 1.2, 0.75  # BM25's usual constants
# Field weights: a word in the name says more about the entry than one in its description.
_WEIGHTS = {"name": 3.0, "services": 2.0, "areas": 2.0, "description": 1.0, "access": 0.5}
_AREA_BONUS = 2.0  # per wished area the entry covers
_TYPE_MISMATCH = 0.3  # an entry of a type the need did not ask for is kept, far down

AREA_KEYS = (*THERAPY_AREAS, *TECHNOLOGY_AREAS, *SUPPORT_KINDS)


class NeedDocument(BaseModel):
    """A need: free text and optional wishes (the NEED.yaml of ``brygga ecosystem match``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=300)
    description: str = Field(min_length=1, max_length=10_000)
    areas: list[Literal[AREA_KEYS]] = Field(default_factory=list, max_length=20)  # type: ignore[valid-type]
    types: list[Literal[ENTRY_TYPES]] = Field(default_factory=list, max_length=5)  # type: ignore[valid-type]
    trl: int | None = Field(default=None, ge=1, le=9)
    languages: list[Literal[LANGUAGES]] = Field(default_factory=list, max_length=7)  # type: ignore[valid-type]
    region: Literal[REGIONS] | None = None  # type: ignore[valid-type]
    sme: bool = False
    timeframe: str = Field(default="", max_length=200)
    budget: str = Field(default="", max_length=200)
    lang: Literal["sv", "en"] | None = None  # the text's language; detected when not given


def load_need(path: str | Path) -> NeedDocument:
    return validate(NeedDocument, read_file(path, "need"), "need")


@dataclass
class _Doc:
    entry_id: int
    slug: str
    name_sv: str
    name_en: str
    type: str
    region: str
    languages: list[str]
    trl: tuple[int, int] | None
    sme: bool
    areas: set[str]
    expires_at: date | None
    terms: dict[str, float]  # term -> weighted frequency
    fields: dict[str, str]  # term -> the field it weighs most in
    length: float


@dataclass
class Ranked:
    """One ranked entry with the reasons, in the need's language."""

    entry_id: int
    id: str
    name: str
    type: str
    score: float
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.entry_id,
            "name": self.name,
            "type": self.type,
            "score": round(self.score, 3),
            "reasons": self.reasons,
        }


class Index:
    """The visible directory as weighted terms, with an inverted index for ranking."""

    def __init__(self, docs: list[_Doc], analyzer: Analyzer) -> None:
        self.docs = docs
        self.analyzer = analyzer
        # BM25's term weight in a document does not depend on the query: the postings hold it
        # (term -> [(document, weight)]), so ranking is additions only.
        raw: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for i, doc in enumerate(docs):
            for term, tf in doc.terms.items():
                raw[term].append((i, tf))
        n = len(docs)
        avg_length = (sum(d.length for d in docs) / n) if n else 1.0
        norms = [_K1 * (1 - _B + _B * d.length / avg_length) for d in docs]
        self.postings: dict[str, list[tuple[int, float]]] = {}
        for term, posting in raw.items():
            idf = math.log(1 + (n - len(posting) + 0.5) / (len(posting) + 0.5))
            self.postings[term] = [(i, idf * tf * (_K1 + 1) / (tf + norms[i])) for i, tf in posting]

    @classmethod
    def build(cls, entries: list[Entry], analyzer: Analyzer | None = None) -> Index:
        analyzer = analyzer or default_analyzer()
        return cls([_document(e, analyzer) for e in entries], analyzer)

    def rank(
        self, need: NeedDocument, *, day: date, limit: int = 10, lang: str | None = None
    ) -> list[Ranked]:
        """The best ``limit`` visible entries for ``need``, best first, each with reasons.

        ``lang``: the language of names and reasons (default: the need's text language).
        """
        text = f"{need.title}\n{need.description}"
        found = self.analyzer.terms(text, need.lang)
        lang = lang or need.lang or detect_language(tokens(text)) or "sv"
        words: dict[str, str] = {}
        for term, word in found:
            words.setdefault(term, word)
        for area in need.areas:  # a wished area is also a concept to look for
            words.setdefault(CONCEPT + area, area)
        scores: dict[int, float] = defaultdict(float)
        for term in words:
            for i, weight in self.postings.get(term, ()):
                scores[i] += weight
        # Scores first; the reasons (catalogue texts) only for the entries that are shown.
        final: list[tuple[float, str, int]] = []
        for i, score in scores.items():
            doc = self.docs[i]
            if doc.expires_at is None or doc.expires_at < day:
                continue
            final.append((_wish_score(need, doc, score), doc.slug, i))
        best = heapq.nsmallest(min(limit, MAX_RESULTS), final, key=lambda x: (-x[0], x[1]))
        ranked = []
        for score, _slug, i in best:
            doc = self.docs[i]
            hits = [t for t in words if t in doc.terms]
            reasons = _text_reasons(hits, words, doc, lang) + _wish_reasons(need, doc, lang)
            name = doc.name_en if lang == "en" else doc.name_sv
            ranked.append(Ranked(doc.entry_id, doc.slug, name, doc.type, score, reasons))
        return ranked


def _document(entry: Entry, analyzer: Analyzer) -> _Doc:
    terms: dict[str, float] = defaultdict(float)
    fields: dict[str, tuple[float, str]] = {}

    def add(text: str, lang: str, field_name: str) -> None:
        weight = _WEIGHTS[field_name]
        for term, _word in analyzer.terms(text, lang):
            terms[term] += weight
            if fields.get(term, (0.0, ""))[0] < weight:
                fields[term] = (weight, field_name)

    add(f"{entry.name_sv}", "sv", "name")
    add(f"{entry.name_en}", "en", "name")
    add(" \n".join(entry.services_sv), "sv", "services")
    add(" \n".join(entry.services_en), "en", "services")
    add(entry.description_sv, "sv", "description")
    add(entry.description_en, "en", "description")
    add(entry.access_sv, "sv", "access")
    add(entry.access_en, "en", "access")
    areas = {*entry.therapy_areas, *entry.technology_areas, *entry.support_kinds}
    if entry.cross_border:
        areas.add("cross_border")
    for area in areas:
        terms[CONCEPT + area] += _WEIGHTS["areas"]
        fields.setdefault(CONCEPT + area, (_WEIGHTS["areas"], "areas"))
    trl = (entry.trl_min, entry.trl_max) if entry.trl_min is not None else None
    return _Doc(
        entry_id=entry.id,
        slug=entry.slug,
        name_sv=entry.name_sv,
        name_en=entry.name_en,
        type=entry.type,
        region=entry.region,
        languages=list(entry.languages),
        trl=trl,  # type: ignore[arg-type]
        sme=entry.sme_eligible,
        areas=areas,
        expires_at=entry.expires_at if entry.status == "published" else None,
        terms=dict(terms),
        fields={t: f for t, (_w, f) in fields.items()},
        length=sum(terms.values()),
    )


def _t(key: str, lang: str, **params: Any) -> str:
    return translate(key, lang).format(**params)


def _text_reasons(terms: list[str], words: dict[str, str], doc: _Doc, lang: str) -> list[str]:
    """ "Matches …" per field, naming the need's own words (concepts first, at most five)."""
    by_field: dict[str, list[str]] = defaultdict(list)
    for term in sorted(terms, key=lambda t: (not t.startswith(CONCEPT), t)):
        if term.startswith(CONCEPT) and term[1:] in doc.areas:
            continue  # said by the area reason below
        word = words[term]
        field_name = doc.fields.get(term, "description")
        if word not in by_field[field_name] and sum(map(len, by_field.values())) < 5:
            by_field[field_name].append(word)
    reasons = []
    for field_name in ("name", "services", "description", "access"):
        if by_field.get(field_name):
            quoted = ", ".join(f"”{w}”" for w in by_field[field_name])
            reasons.append(_t(f"eco_reason_text_{field_name}", lang, words=quoted))
    covered = sorted(a for a in doc.areas if CONCEPT + a in terms)
    if covered:
        labels = ", ".join(translate(_area_key(a), lang) for a in covered)
        reasons.insert(0, _t("eco_reason_areas", lang, areas=labels))
    return reasons


def _area_key(area: str) -> str:
    if area in SUPPORT_KINDS:
        return f"eco_support_{area}"
    return f"eco_area_{area}"


def _wish_score(need: NeedDocument, doc: _Doc, score: float) -> float:
    """The structured wishes: bonuses for what the need asked and the entry has, the type
    filter (other types kept, far down) and a TRL outside the entry's range."""
    score += _AREA_BONUS * sum(area in doc.areas for area in need.areas)
    if need.types and doc.type not in need.types:
        score *= _TYPE_MISMATCH
    if need.trl is not None and doc.trl is not None:
        low, high = doc.trl
        score = score + 1.0 if low <= need.trl <= high else score * 0.6
    if any(x in doc.languages for x in need.languages):
        score += 0.5
    if need.sme and doc.sme:
        score += 0.5
    if need.region and need.region == doc.region:
        score += 0.5
    return score


def _wish_reasons(need: NeedDocument, doc: _Doc, lang: str) -> list[str]:
    """The wishes the entry meets, as sentences (``_wish_score``'s bonuses)."""
    reasons: list[str] = []
    if need.types and doc.type in need.types:
        reasons.append(_t("eco_reason_type", lang, type=translate(f"eco_type_{doc.type}", lang)))
    if need.trl is not None and doc.trl is not None and doc.trl[0] <= need.trl <= doc.trl[1]:
        reasons.append(_t("eco_reason_trl", lang, trl=need.trl, low=doc.trl[0], high=doc.trl[1]))
    shared = [x for x in need.languages if x in doc.languages]
    if shared:
        names = ", ".join(translate(f"eco_lang_{x}", lang) for x in shared)
        reasons.append(_t("eco_reason_languages", lang, languages=names))
    if need.sme and doc.sme:
        reasons.append(_t("eco_reason_sme", lang))
    if need.region and need.region == doc.region:
        region = translate(f"eco_region_{doc.region}", lang)
        reasons.append(_t("eco_reason_region", lang, region=region))
    return reasons

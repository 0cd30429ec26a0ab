"""Swedish and English free text to the terms the ranking compares: words, stems, concepts.

* **Stems.** The Swedish stemmer is the Snowball algorithm for Swedish (Porter's, the one
  Lucene and PostgreSQL use), written out here because the shared environment has no stemming
  package; the English one is a light stemmer (plurals, -ing/-ed, -isation/-ization, final e)
  that treats both spellings of British and American suffixes alike. Both are applied the same
  way to the directory and to a need, which is what the ranking needs.
* **Concepts.** ``synonyms.yaml`` groups words and phrases in both languages that mean the same
  thing to a user of the directory ("cell- och genterapi", "ATMP", "gene therapy"); a phrase
  found in a text adds the group's concept term (``@atmp``), so a Swedish need finds an English
  profile and the other way round. A group named like a profile's area key (``atmp``,
  ``clinical_trials``) is the same concept as that area.
"""

from __future__ import annotations

__all__ = [
    "CONCEPT",
    "Analyzer",
    "default_analyzer",
    "detect_language",
    "stem_en",
    "stem_sv",
    "tokens",
]

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from brygga.documents import read_file

CONCEPT = "@"  # concept terms start with it; no word does
_WORD = re.compile(r"[a-z0-9åäöéüæø]+")
_VOWELS_SV = set("aeiouyäåö")
_SV_STEP1 = sorted(
    [
        "heterna",
        "hetens",
        "anden",
        "andes",
        "andet",
        "arens",
        "arnas",
        "ernas",
        "ornas",
        "heten",
        "heter",
        "ande",
        "arne",
        "arna",
        "erna",
        "orna",
        "ades",
        "aren",
        "erns",
        "ad",
        "ade",
        "are",
        "aste",
        "en",
        "ern",
        "ar",
        "er",
        "or",
        "as",
        "es",
        "ens",
        "at",
        "het",
        "ast",
        "a",
        "e",
    ],
    key=len,
    reverse=True,
)
_SV_S_ENDING = set("bcdfghjklmnoprtvy")
_SV_STEP2 = ("dd", "gd", "nn", "dt", "gt", "kt", "tt")

STOP_SV = frozenset(
    [
        "och",
        "i",
        "att",
        "det",
        "som",
        "en",
        "på",
        "är",
        "av",
        "för",
        "med",
        "till",
        "den",
        "har",
        "de",
        "inte",
        "om",
        "ett",
        "han",
        "men",
        "var",
        "jag",
        "sig",
        "från",
        "vi",
        "så",
        "kan",
        "man",
        "när",
        "år",
        "eller",
        "efter",
        "vid",
        "hur",
        "nu",
        "även",
        "vara",
        "här",
        "där",
        "vill",
        "ska",
        "skulle",
        "vår",
        "våra",
        "vi",
        "oss",
        "deras",
        "dess",
        "detta",
        "dessa",
        "denna",
        "behöver",
        "söker",
        "letar",
        "finns",
        "någon",
        "några",
        "något",
    ]
)
STOP_EN = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "in",
        "to",
        "for",
        "with",
        "on",
        "at",
        "by",
        "from",
        "is",
        "are",
        "be",
        "we",
        "our",
        "us",
        "that",
        "this",
        "these",
        "those",
        "it",
        "its",
        "as",
        "into",
        "can",
        "need",
        "needs",
        "looking",
        "seek",
        "seeking",
        "want",
        "would",
        "like",
        "some",
        "any",
        "who",
        "which",
        "what",
        "have",
        "has",
        "do",
        "does",
    ]
)


def tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _r1_sv(word: str) -> int:
    for i in range(1, len(word)):
        if word[i] not in _VOWELS_SV and word[i - 1] in _VOWELS_SV:
            return max(i + 1, 3)
    return len(word)


def stem_sv(word: str) -> str:
    """Snowball Swedish: inflectional endings, double consonants, derivational endings."""
    r1 = _r1_sv(word)
    # Step 1: the longest ending in R1.
    for suffix in _SV_STEP1:
        if word.endswith(suffix) and len(word) - len(suffix) >= r1:
            word = word[: -len(suffix)]
            break
    else:
        if word.endswith("s") and len(word) - 1 >= r1 and word[-2:-1] in _SV_S_ENDING:
            word = word[:-1]
    # Step 2: a double consonant ending in R1 loses its last letter.
    if any(word.endswith(d) and len(word) - 2 >= r1 for d in _SV_STEP2):
        word = word[:-1]
    # Step 3: derivational endings.
    for suffix, replacement in (
        ("fullt", "full"),
        ("löst", "lös"),
        ("lig", ""),
        ("els", ""),
        ("ig", ""),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= r1:
            word = word[: -len(suffix)] + replacement
            break
    return word


_EN_SUFFIXES = (
    ("isations", "is"), ("izations", "is"), ("isation", "is"), ("ization", "is"),
    ("ational", "ate"), ("fulness", "ful"), ("iveness", "ive"), ("ations", "ate"),
    ("ation", "ate"), ("ities", "ity"), ("ising", "is"), ("izing", "is"), ("ised", "is"),
    ("ized", "is"), ("ises", "is"), ("izes", "is"), ("ise", "is"), ("ize", "is"),
)  # fmt: skip


def stem_en(word: str) -> str:
    """A light English stemmer: plurals, -ing and -ed, -isation/-ization, a final e."""
    if len(word) <= 3:
        return word
    for suffix, replacement in _EN_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + replacement
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        stem = word[: -len(suffix)]
        if word.endswith(suffix) and len(stem) >= 3 and any(c in "aeiouy" for c in stem):
            word = stem
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]
            break
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


def detect_language(words: list[str]) -> str | None:
    """ "sv", "en", or None when the text gives no sign (both stemmers are then used)."""
    sv = sum(w in STOP_SV for w in words) + sum(any(c in "åäö" for c in w) for w in words)
    en = sum(w in STOP_EN for w in words)
    if sv > en:
        return "sv"
    if en > sv:
        return "en"
    return None


@dataclass
class _Phrases:
    """Stemmed phrases (tuples of stems) of each concept, longest first."""

    by_first: dict[str, list[tuple[tuple[str, ...], str]]] = field(default_factory=dict)

    def add(self, stems: tuple[str, ...], concept: str) -> None:
        entries = self.by_first.setdefault(stems[0], [])
        if (stems, concept) not in entries:
            entries.append((stems, concept))
            entries.sort(key=lambda e: -len(e[0]))


class Analyzer:
    """Text -> terms (stems and concepts), with the surface word each term came from."""

    def __init__(self, synonyms: dict[str, list[str]]) -> None:
        self.concepts = sorted(synonyms)
        self._phrases = _Phrases()
        # Swedish writes compounds as one word ("synkrotronljusanläggning",
        # "helgenomsekvensering"): a word that starts or ends with a known one-word synonym
        # also counts as that word. Only synonyms of 5+ letters, so "cell" does not split
        # "cellulär" into nonsense.
        self._parts: set[str] = set()
        for concept, phrases in synonyms.items():
            for phrase in [concept.replace("_", " "), *phrases]:
                words = tokens(phrase)
                if not words:
                    continue
                if len(words) == 1 and len(words[0]) >= 5:
                    self._parts.add(words[0])
                for stem in (stem_sv, stem_en):
                    self._phrases.add(tuple(stem(w) for w in words), concept)
        self._prefixes = sorted(self._parts, key=len, reverse=True)

    def _split(self, word: str) -> list[str]:
        """The known words a compound starts and ends with (none for a plain word)."""
        if len(word) < 8 or word in self._parts:
            return []
        found = []
        for part in self._prefixes:
            if word.startswith(part) and len(word) - len(part) >= 3:
                found.append(part)
                break
        for part in self._prefixes:
            if word.endswith(part) and len(word) - len(part) >= 3:
                found.append(part)
                break
        return found

    def terms(self, text: str, lang: str | None = None) -> list[tuple[str, str]]:
        """(term, surface word or phrase) for each stem and each concept found in ``text``.

        ``lang`` None: detected from the text; still undecided, both stemmers are used.
        """
        words = tokens(text)
        lang = lang or detect_language(words)
        words = [part for word in words for part in (word, *self._split(word))]
        stemmers = {"sv": (stem_sv,), "en": (stem_en,)}.get(lang or "", (stem_sv, stem_en))
        stop = STOP_SV | STOP_EN
        out: list[tuple[str, str]] = []
        for stemmer in stemmers:
            stems = [stemmer(w) for w in words]
            for i, word in enumerate(words):
                if word not in stop:
                    out.append((stems[i], word))
                for phrase, concept in self._phrases.by_first.get(stems[i], ()):
                    if tuple(stems[i : i + len(phrase)]) == phrase:
                        out.append((CONCEPT + concept, " ".join(words[i : i + len(phrase)])))
        return out


@cache
def default_analyzer() -> Analyzer:
    """The analyzer with the package's synonym list (``synonyms.yaml``)."""
    document = read_file(Path(__file__).parent / "synonyms.yaml", "synonyms")
    groups = document.data["concepts"]
    return Analyzer({str(k): [str(p) for p in v] for k, v in groups.items()})

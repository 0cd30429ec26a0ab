"""A regional life-science strategy as data: priorities, measures, owners, indicators, targets.

Each strategy is one YAML document in the repository (``agenda/strategies/*.yaml``), read with
the one loader (``brygga.documents``) and validated here, so a mistake is an error naming the
file, line and field. Every priority, theme, measure, indicator, baseline and target cites the
passage of the strategy it comes from (``cite``), so a reader can check that the data says what
the strategy says. A target is either the strategy's own (``kind: strategy``) or a proposal
(``kind: proposal``) with its ``anchor``: where the number comes from (a national or foreign
benchmark), because most of the strategies' aims are directions without a number.

Indicators name a KPI of the registry (``agenda.kpis``); ``check_kpis`` refuses an unknown one.
"""

from __future__ import annotations

__all__ = [
    "STRATEGY_DIR",
    "Baseline",
    "Cite",
    "Indicator",
    "Measure",
    "Owner",
    "Priority",
    "Strategy",
    "Target",
    "Text",
    "Theme",
    "bundled",
    "bundled_strategy",
    "check_kpis",
    "load_strategy",
    "parse_strategy",
]

from collections.abc import Collection
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from brygga.documents import Document, parse_yaml, read_file, validate
from brygga.errors import DocumentError, NotFoundError

STRATEGY_DIR = Path(__file__).parent / "strategies"

_Id = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Model):
    """A text in Swedish (the strategy's language) and English."""

    sv: str = Field(min_length=1, max_length=2000)
    en: str = Field(min_length=1, max_length=2000)

    def get(self, lang: str) -> str:
        return self.en if lang == "en" else self.sv


class Cite(_Model):
    """The passage a statement comes from: the strategy's words (Swedish, as written) and
    where they are (section, page where the printed document numbers it)."""

    quote: str = Field(min_length=3, max_length=2000)
    section: str = Field(min_length=1, max_length=200)
    page: int | None = Field(default=None, ge=1)


class Owner(_Model):
    """Who answers for a measure: an organization named by the strategy. ``directory_id``:
    its entry in the ecosystem directory, once that exists."""

    name: str = Field(min_length=1, max_length=200)
    # strategy: the strategy names this owner; proposal: it names none, this is Brygga's
    # proposal (the strategy asks for "ett tydliggörande kring vem som ansvarar").
    assigned: Literal["strategy", "proposal"] = "strategy"
    directory_id: str | None = Field(default=None, max_length=100)


class Measure(_Model):
    id: str = _Id
    text: Text
    owners: list[Owner] = Field(min_length=1, max_length=20)
    cite: Cite


class Baseline(_Model):
    value: float
    period: str = Field(pattern=r"^\d{4}(-Q[1-4])?$")
    source: str = Field(min_length=1, max_length=300)
    note: Text | None = None
    cite: Cite | None = None  # when the strategy itself states the baseline


class Target(_Model):
    """``kind: strategy``: the strategy's own target (``cite`` required); ``proposal``: a
    proposed number (``anchor`` required: where it comes from)."""

    kind: Literal["strategy", "proposal"]
    direction: Literal["increase", "decrease", "at_least", "at_most"]
    value: float | None = None  # None: a direction only (``increase``, ``decrease``)
    by: int | None = Field(default=None, ge=2000, le=2100)  # the year it is to be reached
    text: Text
    anchor: Text | None = None
    cite: Cite | None = None

    @model_validator(mode="after")
    def _grounded(self) -> Target:
        if self.kind == "strategy" and self.cite is None:
            raise ValueError("a target of the strategy itself needs the passage (cite)")
        if self.kind == "proposal" and not self.anchor:
            raise ValueError("a proposed target needs its anchor (where the number comes from)")
        if self.direction in ("at_least", "at_most") and self.value is None:
            raise ValueError(f"direction {self.direction} needs a value")
        return self


class Indicator(_Model):
    kpi: str = _Id
    area: str | None = None  # imported series: whose figures (default: the strategy's region)
    baseline: Baseline | None = None
    target: Target | None = None
    cite: Cite


class Theme(_Model):
    id: str = _Id
    name: Text
    cite: Cite


class Priority(_Model):
    """A priority (Skåne), a development area or the research promise (Stockholm)."""

    id: str = _Id
    kind: Literal["priority", "development_area", "promise"]
    number: str = Field(max_length=10)  # as the strategy numbers it: "1", "4.3"
    name: Text
    summary: Text
    cite: Cite
    sdgs: list[int] = Field(default_factory=list, max_length=17)
    themes: list[str] = Field(default_factory=list, max_length=20)
    measures: list[Measure] = Field(default_factory=list, max_length=100)
    indicators: list[Indicator] = Field(default_factory=list, max_length=100)


class Source(_Model):
    title: str = Field(min_length=1, max_length=300)
    publisher: str = Field(min_length=1, max_length=200)
    published: str = Field(pattern=r"^\d{4}(-\d{2})?$")
    document: str = Field(min_length=1, max_length=300)  # the text the passages are quoted from


class Strategy(_Model):
    id: str = _Id
    region: Literal["skane", "stockholm"]
    name: Text
    source: Source
    sdgs: list[int] = Field(default_factory=list, max_length=17)
    # strategy: the strategy names these goals; proposal: it refers to Agenda 2030 without
    # naming goals, and the tags are Brygga's reading.
    sdg_basis: Literal["strategy", "proposal"] = "strategy"
    sdg_cite: Cite | None = None
    goals: list[Theme] = Field(default_factory=list, max_length=10)
    ways_of_working: list[Theme] = Field(default_factory=list, max_length=10)
    themes: list[Theme] = Field(default_factory=list, max_length=20)
    priorities: list[Priority] = Field(min_length=1, max_length=30)

    @model_validator(mode="after")
    def _consistent(self) -> Strategy:
        for sdg in [*self.sdgs, *(s for p in self.priorities for s in p.sdgs)]:
            if not 1 <= sdg <= 17:
                raise ValueError(f"SDG {sdg} does not exist (1-17)")
        ids = [p.id for p in self.priorities] + [m.id for p in self.priorities for m in p.measures]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"ids used twice: {', '.join(dupes)}")
        known = {t.id for t in self.themes}
        for p in self.priorities:
            unknown = [t for t in p.themes if t not in known]
            if unknown:
                raise ValueError(f"priority {p.id}: unknown themes {', '.join(unknown)}")
        return self

    @property
    def indicators(self) -> list[Indicator]:
        return [i for p in self.priorities for i in p.indicators]

    def kpi_ids(self) -> list[str]:
        """Every KPI the strategy follows, once each, in order of first mention."""
        return list(dict.fromkeys(i.kpi for i in self.indicators))


def parse_strategy(document: Document) -> Strategy:
    return validate(Strategy, document, "strategy")


def load_strategy(path: str | Path) -> Strategy:
    """A strategy file, or the id of a bundled strategy (``skane-firs-2026``)."""
    candidate = STRATEGY_DIR / f"{path}.yaml"
    if not Path(path).suffix and candidate.is_file():
        path = candidate
    return parse_strategy(read_file(path, "strategy"))


@cache
def _bundled() -> tuple[Strategy, ...]:
    return tuple(load_strategy(p) for p in sorted(STRATEGY_DIR.glob("*.yaml")))


def bundled() -> list[Strategy]:
    """The strategies that come with Brygga, in file-name order (read once per process: the
    files are part of the package and the models are immutable)."""
    return list(_bundled())


def bundled_strategy(strategy_id: str) -> Strategy:
    """A bundled strategy by id."""
    for strategy in _bundled():
        if strategy.id == strategy_id:
            return strategy
    raise NotFoundError(f"no bundled strategy {strategy_id!r}")


def check_kpis(strategy: Strategy, known: Collection[str], source: str = "") -> None:
    """Refuse indicators that name a KPI the registry does not define (file, line, field)."""
    problems: list[tuple[str, int | None, str]] = []
    document: Document | None = None
    for pi, priority in enumerate(strategy.priorities):
        for ii, indicator in enumerate(priority.indicators):
            if indicator.kpi not in known:
                path = ("priorities", pi, "indicators", ii, "kpi")
                document = document or _document(strategy, source)  # lines, for the message
                line = document.line_of(path) if document else None
                problems.append(
                    (
                        f"priorities[{pi}].indicators[{ii}].kpi",
                        line,
                        f"unknown KPI {indicator.kpi!r}",
                    )
                )
    if problems:
        where = source or strategy.id
        lines = [f"{p} (line {ln})" if ln else p for p, ln, _ in problems]
        text = "\n  ".join(f"{w}: {t}" for w, (_, _, t) in zip(lines, problems, strict=True))
        raise DocumentError(f"{where}: invalid strategy:\n  {text}", problems)


def _document(strategy: Strategy, source: str) -> Document | None:
    """The YAML node tree of ``source`` for line numbers (None when it cannot be read)."""
    path = Path(source) if source else STRATEGY_DIR / f"{strategy.id}.yaml"
    try:
        return parse_yaml(path.read_text(encoding="utf-8"), str(path))
    except (OSError, DocumentError, NotFoundError):
        return None

"""The anonymization config: a YAML file validated by pydantic.

Errors name the field path (``quasi_identifiers[2].hierarchy.widths``) so a data steward can fix
the file without reading code. The format is documented in ``docs/anonymize.md``.
"""

from __future__ import annotations

__all__ = [
    "AnonymizeConfig",
    "AutoHierarchy",
    "DateHierarchy",
    "DateLevel",
    "FlatHierarchy",
    "HierarchySpec",
    "Icd10Hierarchy",
    "IntervalHierarchy",
    "Metric",
    "Mode",
    "MunicipalityHierarchy",
    "PrefixHierarchy",
    "QuasiIdentifier",
    "Sensitive",
    "load_config",
    "parse_config",
]

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from brygga import documents


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntervalHierarchy(_Model):
    """Numbers -> intervals of growing width -> '*'. Each width must be a multiple of the last."""

    type: Literal["interval"]
    widths: list[Annotated[float, Field(gt=0)]] = Field(min_length=1)
    start: float = 0.0

    @model_validator(mode="after")
    def _nested(self) -> IntervalHierarchy:
        for i, (finer, coarser) in enumerate(zip(self.widths, self.widths[1:], strict=False)):
            ratio = coarser / finer
            if ratio < 2 - 1e-9 or abs(ratio - round(ratio)) > 1e-9:
                raise ValueError(
                    f"widths[{i + 1}] ({coarser:g}) must be a multiple (>= 2x) of widths[{i}]"
                    f" ({finer:g}) so that the intervals nest"
                )
        return self


DateLevel = Literal["month", "year", "decade"]


class DateHierarchy(_Model):
    """Dates -> month -> year -> decade -> '*' (any increasing subset of those levels)."""

    type: Literal["date"]
    levels: list[DateLevel] = Field(default=["month", "year", "decade"], min_length=1)
    format: str = "%Y-%m-%d"

    @model_validator(mode="after")
    def _increasing(self) -> DateHierarchy:
        rank = {"month": 0, "year": 1, "decade": 2}
        ranks = [rank[x] for x in self.levels]
        if ranks != sorted(set(ranks)):
            raise ValueError(
                "levels must be distinct and go from fine to coarse: month, year, decade"
            )
        return self


class Icd10Hierarchy(_Model):
    """ICD-10 codes: E119 -> E11 (category) -> E (letter) -> '*'."""

    type: Literal["icd10"]


class MunicipalityHierarchy(_Model):
    """Swedish SCB kommunkod (4 digits) -> county (first two digits) -> '*'."""

    type: Literal["municipality"]


class PrefixHierarchy(_Model):
    """Codes -> ever shorter prefixes -> '*', e.g. postcodes with lengths [3, 1]."""

    type: Literal["prefix"]
    lengths: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)

    @model_validator(mode="after")
    def _decreasing(self) -> PrefixHierarchy:
        if any(b >= a for a, b in zip(self.lengths, self.lengths[1:], strict=False)):
            raise ValueError("lengths must be strictly decreasing, e.g. [3, 1]")
        return self


class FlatHierarchy(_Model):
    """Value -> '*': the attribute is either kept or suppressed entirely."""

    type: Literal["flat"]


AutoHierarchy = Annotated[
    IntervalHierarchy
    | DateHierarchy
    | Icd10Hierarchy
    | MunicipalityHierarchy
    | PrefixHierarchy
    | FlatHierarchy,
    Field(discriminator="type"),
]
HierarchySpec = str | AutoHierarchy


class QuasiIdentifier(_Model):
    column: str = Field(min_length=1)
    # A CSV file in ARX's format, an automatic hierarchy, or None: look for <column>.csv or
    # *hierarchy_<column>.csv in the hierarchy folder.
    hierarchy: HierarchySpec | None = None


class Sensitive(_Model):
    """A sensitive attribute: never generalized; optionally l-diverse and/or t-close."""

    column: str = Field(min_length=1)
    l: int | None = Field(default=None, ge=2)  # noqa: E741 - the letter of the literature
    diversity: Literal["distinct", "entropy"] = "distinct"
    t: float | None = Field(default=None, gt=0, le=1)
    distance: Literal["equal", "ordered", "hierarchical"] = "equal"
    # Ordinal values in order, for ``distance: ordered`` on non-numeric values.
    order: list[str] | None = None
    # For ``distance: hierarchical``.
    hierarchy: HierarchySpec | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Sensitive:
        if self.t is None and (self.distance != "equal" or self.order or self.hierarchy):
            raise ValueError("distance, order and hierarchy only apply with t")
        if self.order is not None and self.distance != "ordered":
            raise ValueError("order only applies with distance: ordered")
        if self.order is not None and len(set(self.order)) != len(self.order):
            raise ValueError("order lists a value twice")
        if self.distance == "hierarchical" and self.hierarchy is None:
            raise ValueError("distance: hierarchical needs a hierarchy")
        return self


Metric = Literal["precision", "discernibility", "aecs"]


Mode = Literal["global", "local"]


class AnonymizeConfig(_Model):
    k: int = Field(ge=1)
    # global: one level per column for the whole extract (optimal lattice search);
    # local: each equivalence class its own levels (Mondrian over the hierarchies, local.py).
    mode: Mode = "global"
    suppression_limit: float = Field(default=0.0, ge=0, le=1)
    metric: Metric = "precision"
    separator: str = Field(default=",", min_length=1, max_length=1)
    hierarchy_separator: str = Field(default=";", min_length=1, max_length=1)
    quasi_identifiers: list[QuasiIdentifier] = Field(min_length=1)
    sensitive: list[Sensitive] = Field(default_factory=list)

    @model_validator(mode="after")
    def _distinct_columns(self) -> AnonymizeConfig:
        seen: set[str] = set()
        for c in [q.column for q in self.quasi_identifiers] + [s.column for s in self.sensitive]:
            if c in seen:
                raise ValueError(f"column {c!r} is listed twice (each column has one role)")
            seen.add(c)
        return self


_BRANCH_TAGS = frozenset({"str", "interval", "date", "icd10", "municipality", "prefix", "flat"})


def _explain(path: str, error: Any) -> str | None:
    """A hierarchy is 'a path or an automatic spec', not two failed guesses."""
    if error["type"] in {"model_attributes_type", "dict_type"} and path.endswith("hierarchy"):
        return "expected a file path or an automatic hierarchy such as {type: flat}"
    return None


def parse_config(data: object, source: str) -> AnonymizeConfig:
    """Validate decoded YAML (or a ``documents.Document``); one error names every problem."""
    document = data if isinstance(data, documents.Document) else documents.Document(data, source)
    return documents.validate(
        AnonymizeConfig, document, "anonymization config", branches=_BRANCH_TAGS, explain=_explain
    )


def load_config(path: str | Path) -> AnonymizeConfig:
    return parse_config(documents.read_file(path, "config"), str(path))

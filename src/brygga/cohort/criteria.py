"""The eligibility criteria language: pydantic models, loaded from YAML or JSON.

One language serves trial feasibility, recruitment matching, prevention targeting and data
requests. The semantics are documented in ``docs/criteria.md`` and pinned down executably by
``cohort/reference.py``; every engine is tested against that evaluator.

A rule is a one-key mapping (``{condition: {...}}``, ``{any_of: [...]}``); the key picks the
model. Documents are read by ``brygga.documents`` (no YAML aliases, bounded depth and size) and
validation errors are turned into one :class:`DocumentError` whose lines name the field path, the
line and the problem, e.g. ``include[2].measurement.value.min (line 9): must be a number``.
Limits on size (``MAX_RULES``...) are defined below and documented in ``docs/criteria.md``.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_SUPPLY_DAYS",
    "ENTRY_KINDS",
    "ERA_GAP_DAYS",
    "GROUP_KINDS",
    "MAX_CODES",
    "MAX_DESCRIPTION",
    "MAX_MUNICIPALITIES",
    "MAX_NAME",
    "MAX_NESTING",
    "MAX_OFFSET",
    "MAX_RULES",
    "MUNICIPALITY",
    "OMOP",
    "RULE_KINDS",
    "SEX_CONCEPTS",
    "VISIT_TYPES",
    "AgeRange",
    "AllOf",
    "AnyOf",
    "AtLeast",
    "AtLeastSpec",
    "CodeNames",
    "ConditionRule",
    "ConditionSpec",
    "Count",
    "Criteria",
    "Days",
    "DeathRule",
    "DeathSpec",
    "Demographics",
    "DemographicsRule",
    "DrugRule",
    "DrugSpec",
    "Entry",
    "EntryPeriod",
    "EventSpec",
    "Exposure",
    "Factor",
    "MeasurementRule",
    "MeasurementSpec",
    "Model",
    "NoneOf",
    "Number",
    "ObservationRule",
    "ObservationSpec",
    "Offset",
    "ProcedureRule",
    "ProcedureSpec",
    "Rule",
    "ValueRange",
    "ValuedSpec",
    "VisitRule",
    "VisitSpec",
    "Window",
    "Years",
    "check_size",
    "code_bounds",
    "criteria_from_text",
    "describe_rule",
    "load_criteria",
    "parse_criteria",
    "rule_body",
    "rule_codes",
    "rule_kind",
    "window_bounds",
]

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Strict,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from brygga import clock, documents
from brygga.errors import DocumentError, InputError
from brygga.records import codes as codebook

# Limits (docs/criteria.md, "Limits"): criteria come from researchers over the web, and a
# question must not be able to exhaust the service. Every rule counts towards MAX_RULES, groups
# and the rules inside them alike; MAX_NESTING counts groups inside groups.
MAX_RULES = 200
MAX_NESTING = 6
MAX_CODES = 500  # per rule, in codes and in among
MAX_MUNICIPALITIES = 300  # Sweden has 290
MAX_NAME = 200  # characters
MAX_DESCRIPTION = 5000  # characters

Number = Annotated[float, Strict()]  # YAML/JSON numbers only: "53" and true are rejected
Count = Annotated[int, Strict(), Field(ge=1)]
Days = Annotated[int, Strict(), Field(ge=0)]
# A window's bound may be negative (a window that need not hold the index date); a century is
# ample and keeps date arithmetic inside the calendar.
MAX_OFFSET = 36600
Offset = Annotated[int, Strict(), Field(ge=-MAX_OFFSET, le=MAX_OFFSET)]
Years = Annotated[int, Strict(), Field(ge=0, le=150)]

OMOP = "OMOP"
SEX_CONCEPTS = codebook.GENDER_OF_SEX
VISIT_TYPES = {
    "outpatient": codebook.VISIT_OUTPATIENT,
    "inpatient": codebook.VISIT_INPATIENT,
    "emergency": codebook.VISIT_EMERGENCY,
}


# Names of codes for people to read, by (vocabulary, code) (``records.store.Region.code_names``).
CodeNames = Mapping[tuple[str, str], str]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- Building blocks -------------------------------------------------------------------------


class Window(Model):
    """Days relative to the index date; both ends inclusive.

    A rule without ``within`` looks at all history up to and including the index date. With
    ``within``, an omitted side is 0: ``{days_before: 365}`` is [index - 365, index]. Either
    bound may be negative, so a window need not hold the index date: ``{days_before: 3650,
    days_after: -1}`` ends the day before it, ``{days_before: -30, days_after: 90}`` starts
    30 days after it. The window must not end before it starts.
    """

    days_before: Offset = 0
    days_after: Offset = 0

    @model_validator(mode="after")
    def _not_empty(self) -> Window:
        if self.days_before + self.days_after < 0:
            raise ValueError(
                f"the window ends before it starts (days_before {self.days_before} and "
                f"days_after {self.days_after} leave no day; their sum must be at least 0)"
            )
        return self

    def bounds(self, index_date: date) -> tuple[date, date]:
        return index_date - timedelta(days=self.days_before), index_date + timedelta(
            days=self.days_after
        )

    def describe(self) -> str:
        def side(days: int) -> str:
            if days == 0:
                return "the index date"
            word = "before" if days < 0 else "after"
            return f"{abs(days)} days {word} the index date"

        if self.days_after == 0 and self.days_before >= 0:
            return f"in the {self.days_before} days up to the index date"
        if self.days_before == 0 and self.days_after >= 0:
            return f"in the {self.days_after} days from the index date"
        return f"from {side(-self.days_before)} to {side(self.days_after)}"


def window_bounds(within: Window | None, index_date: date) -> tuple[date | None, date]:
    """(earliest, latest) event date a rule looks at; ``None`` means no lower bound."""
    if within is None:
        return None, index_date
    return within.bounds(index_date)


Factor = Annotated[float, Strict(), Field(gt=0)]


class ValueRange(Model):
    """Bounds on ``value_as_number``; a record without a value never matches.

    ``min``/``max`` are inclusive, ``above``/``below`` strict. The ``*_times_*_normal`` bounds
    compare the value with the record's own normal range (OMOP ``range_low``/``range_high``),
    inclusive: ``max_times_upper_normal: 2.5`` holds when value <= 2.5 x range_high. A record
    without that end of its normal range never matches such a bound.
    """

    min: Number | None = None
    max: Number | None = None
    above: Number | None = None
    below: Number | None = None
    min_times_upper_normal: Factor | None = None
    max_times_upper_normal: Factor | None = None
    min_times_lower_normal: Factor | None = None
    max_times_lower_normal: Factor | None = None

    NORMAL: ClassVar[tuple[str, ...]] = (
        "min_times_upper_normal",
        "max_times_upper_normal",
        "min_times_lower_normal",
        "max_times_lower_normal",
    )

    @model_validator(mode="after")
    def _check(self) -> ValueRange:
        given = {k: v for k, v in self.model_dump().items() if v is not None}
        if not given:
            raise ValueError("give min, max, above, below or a bound on the normal range")
        if self.min is not None and self.above is not None:
            raise ValueError("give min (inclusive) or above (strict), not both")
        if self.max is not None and self.below is not None:
            raise ValueError("give max (inclusive) or below (strict), not both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is greater than max ({self.max:g})")
        low = self.min if self.min is not None else self.above
        high = self.max if self.max is not None else self.below
        strict = self.above is not None or self.below is not None
        if low is not None and high is not None and (low > high or (low == high and strict)):
            raise ValueError(f"no value is both {self._low_text()} and {self._high_text()}")
        for end in ("upper", "lower"):
            a, b = given.get(f"min_times_{end}_normal"), given.get(f"max_times_{end}_normal")
            if a is not None and b is not None and a > b:
                raise ValueError(f"min_times_{end}_normal ({a:g}) is greater than max ({b:g})")
        return self

    @property
    def normal(self) -> bool:
        """Whether a bound refers to the record's normal range."""
        return any(getattr(self, k) is not None for k in self.NORMAL)

    def plain_holds(self, value: float) -> bool:
        """The bounds that need no normal range hold for ``value``."""
        return (
            (self.min is None or value >= self.min)
            and (self.max is None or value <= self.max)
            and (self.above is None or value > self.above)
            and (self.below is None or value < self.below)
        )

    def _low_text(self) -> str:
        return f">= {self.min:g}" if self.min is not None else f"> {self.above:g}"

    def _high_text(self) -> str:
        return f"<= {self.max:g}" if self.max is not None else f"< {self.below:g}"

    def describe(self) -> str:
        parts = []
        if self.min is not None or self.above is not None:
            parts.append(self._low_text())
        if self.max is not None or self.below is not None:
            parts.append(self._high_text())
        if self.min is not None and self.max is not None:
            parts = [f"{self.min:g}-{self.max:g}"]
        for key, text in (
            ("min_times_upper_normal", ">= {:g} x upper normal"),
            ("max_times_upper_normal", "<= {:g} x upper normal"),
            ("min_times_lower_normal", ">= {:g} x lower normal"),
            ("max_times_lower_normal", "<= {:g} x lower normal"),
        ):
            if getattr(self, key) is not None:
                parts.append(text.format(getattr(self, key)))
        return " and ".join(parts)


def _vocabulary_id(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return codebook.vocabulary(value).id
    except InputError as exc:
        raise ValueError(exc.message) from None


def _resolve_codes(
    codes: list[str], vocabulary: str | None, aliases: bool
) -> list[tuple[str, str]]:
    """A rule's codes -> (vocabulary id, normalized code) pairs; an alias may stand for several
    (the safety labs: NPU and LOINC), of which only those of ``vocabulary`` when one is given."""
    resolved: list[tuple[str, str]] = []
    for code in codes:
        found = codebook.resolve_aliases(code) if aliases and isinstance(code, str) else ()
        matching = [(a.vocabulary, a.code) for a in found if vocabulary in (None, a.vocabulary)]
        resolved += matching or [_resolve_code(code, vocabulary, aliases)]
    return resolved


def _resolve_code(code: str, vocabulary: str | None, aliases: bool) -> tuple[str, str]:
    """One code of a rule -> (vocabulary id, normalized code)."""
    if not isinstance(code, str):
        raise ValueError(f"codes must be strings (quote {code!r})")
    if aliases:
        alias = codebook.resolve_alias(code)
        if alias is not None and vocabulary in (None, alias.vocabulary):
            return alias.vocabulary, alias.code
    if vocabulary is None:
        names = [c.key for c in codebook.ALIASES.values()]
        names += [group[0].key for group in codebook.SAFETY_LABS.values()]
        known = ", ".join(sorted(names, key=str.lower))
        raise ValueError(f"{code!r} is not a known alias ({known}); give a vocabulary")
    group = _code_group(code, vocabulary)
    if group is not None:
        return vocabulary, group
    try:
        normalized = codebook.vocabulary(vocabulary).validate(code)
    except InputError as exc:
        raise ValueError(exc.message) from None
    if vocabulary == OMOP and int(normalized) == 0:
        raise ValueError("OMOP concept id 0 means 'no concept' and cannot be searched for")
    return vocabulary, str(int(normalized)) if vocabulary == OMOP else normalized


ICD10_CHAPTER = re.compile(r"[A-Z]")
KVA_GROUP = re.compile(r"[A-Z]{1,3}")


def _code_group(code: str, vocabulary: str) -> str | None:
    """Codes that name a group rather than one code: an ICD-10 range (``I00-I99``, both ends
    inclusive: every code from I00 up to and including I99 and everything below it), an ICD-10
    chapter letter (``I``) or a KVÅ letter group (``FNG``); the normalized form, or None when
    ``code`` is an ordinary code (left to the vocabulary's own check)."""
    text = code.strip().upper()
    if vocabulary == "ICD10" and "-" in text:
        ends = [e.strip() for e in text.split("-")]
        if len(ends) != 2:
            raise ValueError(f"{code!r} is not an ICD-10 range: write two codes, e.g. 'I00-I99'")
        try:
            low, high = (codebook.vocabulary("ICD10").validate(e) for e in ends)
        except InputError as exc:
            raise ValueError(f"{code!r}: {exc.message}") from None
        if low > high:
            raise ValueError(f"{code!r}: the range's start {low} comes after its end {high}")
        return f"{low}-{high}"
    if vocabulary == "ICD10" and ICD10_CHAPTER.fullmatch(text):
        return text
    if vocabulary == "KVA" and KVA_GROUP.fullmatch(text):
        return text
    return None


def code_bounds(code: str) -> tuple[str, str]:
    """A hierarchical code (prefix or ICD-10 range) as the half-open string interval
    [low, high) of the codes it matches: codes are ASCII, so "starts with E11" is
    E11 <= c < E12, and "I00-I99" is I00 <= c < I9:, which holds I99 and all below it."""
    low, _, high = code.partition("-")
    high = high or low
    return low, high[:-1] + chr(ord(high[-1]) + 1)


# --- Event rules -----------------------------------------------------------------------------


class EventSpec(Model):
    """Records in an event table whose code is in the code set and whose date is in the window.

    ``min_count`` counts distinct dates, so a diagnosis recorded twice at one visit counts once.
    """

    TABLE: ClassVar[str]
    DEFAULT_VOCABULARY: ClassVar[str | None]
    ALIASES: ClassVar[bool] = False

    # Declared before ``codes`` so that the codes validator sees it.
    vocabulary: str | None = Field(default=None, max_length=MAX_NAME)
    codes: list[str] = Field(min_length=1, max_length=MAX_CODES)
    exclude_codes: list[str] | None = Field(default=None, min_length=1, max_length=MAX_CODES)
    within: Window | None = None
    min_count: Count = 1
    _codeset: tuple[tuple[str, str], ...] = PrivateAttr(default=())
    _exclude: tuple[tuple[str, str], ...] = PrivateAttr(default=())

    @field_validator("vocabulary", mode="before")
    @classmethod
    def _vocabulary(cls, value: Any) -> Any:
        return _vocabulary_id(value) if isinstance(value, str) else value

    @field_validator("codes", mode="before")
    @classmethod
    def _codes_are_strings(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError("must be a list of codes, e.g. [E11]")
        return value

    @field_validator("codes")
    @classmethod
    def _codes_resolve(cls, value: list[str], info: ValidationInfo) -> list[str]:
        # Checked here (not only in _resolve) so that errors point at the codes field.
        vocabulary = info.data.get("vocabulary") or cls.DEFAULT_VOCABULARY
        _resolve_codes(value, vocabulary, cls.ALIASES)
        return value

    @field_validator("exclude_codes", mode="before")
    @classmethod
    def _exclude_are_strings(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError("must be a list of codes, e.g. [L01XX05]")
        return value

    @field_validator("exclude_codes")
    @classmethod
    def _exclude_resolve(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        vocabulary = info.data.get("vocabulary") or cls.DEFAULT_VOCABULARY
        _resolve_codes(value or [], vocabulary, cls.ALIASES)
        return value

    @model_validator(mode="after")
    def _resolve(self) -> EventSpec:
        vocabulary = self.vocabulary or self.DEFAULT_VOCABULARY
        resolved = _resolve_codes(self.codes, vocabulary, self.ALIASES)
        self._codeset = tuple(dict.fromkeys(resolved))
        excluded = _resolve_codes(self.exclude_codes or [], vocabulary, self.ALIASES)
        self._exclude = tuple(dict.fromkeys(excluded))
        return self

    @property
    def codeset(self) -> tuple[tuple[str, str], ...]:
        """The codes as (vocabulary, normalized code) pairs, aliases resolved."""
        return self._codeset

    @property
    def exclude_codeset(self) -> tuple[tuple[str, str], ...]:
        """``exclude_codes`` as (vocabulary, normalized code) pairs: a record carrying one of
        them is not a record of this rule at all (it neither counts nor competes for
        ``latest``)."""
        return self._exclude

    def code_matches(self, vocabulary: str, code: str) -> bool:
        """Whether a record's (vocabulary, code) is one of this rule's codes and none of its
        ``exclude_codes`` (OMOP concept ids aside: they need the region's concept tables)."""

        def hit(codeset: tuple[tuple[str, str], ...]) -> bool:
            for v, c in codeset:
                if v != vocabulary or v == OMOP:
                    continue
                if codebook.vocabulary(v).hierarchical:
                    low, high = code_bounds(c)
                    if low <= code < high:
                        return True
                elif code == c:
                    return True
            return False

        return hit(self.codeset) and not hit(self.exclude_codeset)

    def describe_codes(self, names: CodeNames | None = None) -> str:
        text = _describe_codes(self.codeset, names)
        if self.exclude_codeset:
            text += f" except {_describe_codes(self.exclude_codeset, names)}"
        return text

    def describe(self, names: CodeNames | None = None) -> str:
        text = f"{self.TABLE.split('_')[0]} {self.describe_codes(names)}"
        if self.min_count > 1:
            text += f" on at least {self.min_count} dates"
        return text + " " + (self.within.describe() if self.within else "before the index date")


def _describe_codes(codeset: tuple[tuple[str, str], ...], names: CodeNames | None = None) -> str:
    by_vocab: dict[str, list[str]] = {}
    for vocab, code in codeset:
        name = (names or {}).get((vocab, code))
        by_vocab.setdefault(vocab, []).append(f"{code} ({name})" if name else code)
    return "; ".join(f"{v} {', '.join(c)}" for v, c in by_vocab.items())


class ConditionSpec(EventSpec):
    TABLE = "condition_occurrence"
    DEFAULT_VOCABULARY = "ICD10"


# Drug exposure from dispensings (docs/criteria.md, "Drug exposure"): a dispensing covers
# its start date to its end date, else days_supply days, else DEFAULT_SUPPLY_DAYS (a Swedish
# prescription is dispensed for at most three months at a time); dispensings of the rule's
# codes at most ERA_GAP_DAYS apart (after the earlier one's supply ends) join one exposure
# period, as OMOP drug eras do with their 30-day persistence window.
DEFAULT_SUPPLY_DAYS = 90
ERA_GAP_DAYS = 30


class Exposure(Model):
    """Continuous use built from dispensings: ``current`` (an exposure period holds the index
    date) and/or ``min_days`` (an exposure period lasting at least that many days)."""

    current: bool = False
    min_days: Count | None = None

    @model_validator(mode="after")
    def _something(self) -> Exposure:
        if not self.current and self.min_days is None:
            raise ValueError("give current: true, min_days or both")
        return self

    def describe(self) -> str:
        parts = ["current" if self.current else ""]
        if self.min_days is not None:
            parts.append(f"lasting at least {self.min_days} days")
        return "exposure " + " and ".join(p for p in parts if p)


class DrugSpec(EventSpec):
    TABLE = "drug_exposure"
    DEFAULT_VOCABULARY = "ATC"

    exposure: Exposure | None = None

    @model_validator(mode="after")
    def _exposure(self) -> DrugSpec:
        if self.exposure is not None and self.min_count > 1:
            raise ValueError("exposure and min_count > 1 cannot be combined (use min_days)")
        return self

    def describe(self, names: CodeNames | None = None) -> str:
        text = super().describe(names)
        if self.exposure is not None:
            text = text.replace("drug ", f"drug {self.exposure.describe()} of ", 1)
        return text


class ProcedureSpec(EventSpec):
    TABLE = "procedure_occurrence"
    DEFAULT_VOCABULARY = "KVA"


class ValuedSpec(EventSpec):
    """Measurements and observations: optional value range and ``latest``.

    ``latest: true`` looks only at the most recent date, in the window, on which the person has a
    record with one of the ``among`` codes (default: ``codes``), counting only records with a value
    when a value range is given. The rule holds if a record on that date has one of ``codes`` and
    (if given) a value in range.
    """

    DEFAULT_VOCABULARY = None
    ALIASES = True

    value: ValueRange | None = None
    latest: bool = False
    among: list[str] | None = Field(default=None, min_length=1, max_length=MAX_CODES)
    _among: tuple[tuple[str, str], ...] = PrivateAttr(default=())

    @field_validator("among")
    @classmethod
    def _among_resolve(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        _resolve_codes(value or [], info.data.get("vocabulary"), True)
        return value

    @model_validator(mode="after")
    def _latest(self) -> ValuedSpec:
        if self.latest and self.min_count > 1:
            raise ValueError("latest and min_count > 1 cannot be combined")
        if self.among is not None and not self.latest:
            raise ValueError("among is only meaningful with latest: true")
        among = _resolve_codes(self.among or [], self.vocabulary, True)
        self._among = tuple(dict.fromkeys([*self.codeset, *among]))
        return self

    @property
    def among_codeset(self) -> tuple[tuple[str, str], ...]:
        """Codes competing for "latest" (always includes ``codes``)."""
        return self._among

    def describe(self, names: CodeNames | None = None) -> str:
        text = f"{self.TABLE} {self.describe_codes(names)}"
        if self.value is not None:
            text += f" value {self.value.describe()}"
        if self.latest:
            text = "latest " + text
            if self.among:
                text += f" (latest of {_describe_codes(self.among_codeset, names)})"
        if self.min_count > 1:
            text += f" on at least {self.min_count} dates"
        return text + " " + (self.within.describe() if self.within else "before the index date")


class MeasurementSpec(ValuedSpec):
    TABLE = "measurement"


class ObservationSpec(ValuedSpec):
    TABLE = "observation"

    @field_validator("value")
    @classmethod
    def _no_normal_range(cls, value: ValueRange | None) -> ValueRange | None:
        if value is not None and value.normal:
            raise ValueError(
                "observations have no normal range: use min, max, above or below "
                "(normal ranges are for measurements)"
            )
        return value


class VisitSpec(Model):
    """Visits starting in the window, of the given types (default: any)."""

    # A repeated type is harmless (and was accepted before the caps), so the cap leaves room.
    types: list[Literal["outpatient", "inpatient", "emergency"]] | None = Field(
        default=None, min_length=1, max_length=3 * len(VISIT_TYPES)
    )
    within: Window | None = None
    min_count: Count = 1

    @property
    def concept_ids(self) -> list[int] | None:
        return None if self.types is None else [VISIT_TYPES[t] for t in self.types]

    def describe(self, names: CodeNames | None = None) -> str:
        text = f"{'/'.join(self.types)} visit" if self.types else "visit"
        if self.min_count > 1:
            text += f" on at least {self.min_count} dates"
        return text + " " + (self.within.describe() if self.within else "before the index date")


class DeathSpec(Model):
    """A death in the window. People counted are alive at the index date, so only
    ``days_after`` can ever match (e.g. outcome-based data requests)."""

    within: Window

    @field_validator("within")
    @classmethod
    def _after_index(cls, within: Window) -> Window:
        if within.days_after <= 0:
            raise ValueError(
                "days_after must be > 0: people counted are alive at the index date, so a death "
                "on or before it never matches"
            )
        return within

    def describe(self, names: CodeNames | None = None) -> str:
        return f"death {self.within.describe()}"


class AgeRange(Model):
    """Age in completed years at the index date; both ends inclusive."""

    min: Years | None = None
    max: Years | None = None

    @model_validator(mode="after")
    def _check(self) -> AgeRange:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


MUNICIPALITY = re.compile(r"[0-9]{4}")


class Demographics(Model):
    age: AgeRange | None = None
    sex: list[Literal["female", "male"]] | None = Field(default=None, min_length=1, max_length=2)
    municipalities: list[str] | None = Field(
        default=None, min_length=1, max_length=MAX_MUNICIPALITIES
    )

    @field_validator("municipalities", mode="before")
    @classmethod
    def _municipalities(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        for code in value:
            if not isinstance(code, str) or not MUNICIPALITY.fullmatch(code):
                raise ValueError(
                    f'{code!r} is not an SCB kommunkod: write 4 digits in quotes, e.g. "0180"'
                )
        return value

    @property
    def empty(self) -> bool:
        return self.age is None and self.sex is None and self.municipalities is None

    def describe(self) -> str:
        parts = []
        if self.age is not None:
            lo = self.age.min if self.age.min is not None else 0
            parts.append(f"age {lo}-{self.age.max}" if self.age.max is not None else f"age {lo}+")
        if self.sex is not None:
            parts.append("sex " + "/".join(self.sex))
        if self.municipalities is not None:
            parts.append("municipality " + ", ".join(self.municipalities))
        return "Demographics: " + ("; ".join(parts) if parts else "any")


# --- Rules and groups -------------------------------------------------------------------------


class ConditionRule(Model):
    condition: ConditionSpec


class DrugRule(Model):
    drug: DrugSpec


class MeasurementRule(Model):
    measurement: MeasurementSpec


class ProcedureRule(Model):
    procedure: ProcedureSpec


class ObservationRule(Model):
    observation: ObservationSpec


class VisitRule(Model):
    visit: VisitSpec


class DeathRule(Model):
    death: DeathSpec


class DemographicsRule(Model):
    """Demographics as a rule, for groups: sex-specific thresholds
    (``any_of: [{all_of: [{demographics: {sex: [female]}}, ...]}, ...]``)."""

    demographics: Demographics

    @field_validator("demographics")
    @classmethod
    def _not_empty(cls, value: Demographics) -> Demographics:
        if value.empty:
            raise ValueError("give age, sex or municipalities")
        return value


class AnyOf(Model):
    any_of: list[Rule] = Field(min_length=1)


class NoneOf(Model):
    none_of: list[Rule] = Field(min_length=1)


class AllOf(Model):
    all_of: list[Rule] = Field(min_length=1)


class AtLeastSpec(Model):
    n: Count
    of: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _n(self) -> AtLeastSpec:
        if self.n > len(self.of):
            raise ValueError(f"n ({self.n}) is greater than the number of rules ({len(self.of)})")
        return self


class AtLeast(Model):
    at_least: AtLeastSpec


RULE_KINDS: dict[str, type[Model]] = {
    "condition": ConditionRule,
    "drug": DrugRule,
    "measurement": MeasurementRule,
    "procedure": ProcedureRule,
    "observation": ObservationRule,
    "visit": VisitRule,
    "death": DeathRule,
    "demographics": DemographicsRule,
    "any_of": AnyOf,
    "all_of": AllOf,
    "none_of": NoneOf,
    "at_least": AtLeast,
}
GROUP_KINDS = ("any_of", "all_of", "none_of", "at_least")
_KIND_OF_MODEL = {model: kind for kind, model in RULE_KINDS.items()}


def _rule_kind(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return _KIND_OF_MODEL.get(type(value))
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        return key if key in RULE_KINDS else None
    return None


Rule = Annotated[
    Annotated[ConditionRule, Tag("condition")]
    | Annotated[DrugRule, Tag("drug")]
    | Annotated[MeasurementRule, Tag("measurement")]
    | Annotated[ProcedureRule, Tag("procedure")]
    | Annotated[ObservationRule, Tag("observation")]
    | Annotated[VisitRule, Tag("visit")]
    | Annotated[DeathRule, Tag("death")]
    | Annotated[DemographicsRule, Tag("demographics")]
    | Annotated[AnyOf, Tag("any_of")]
    | Annotated[AllOf, Tag("all_of")]
    | Annotated[NoneOf, Tag("none_of")]
    | Annotated[AtLeast, Tag("at_least")],
    Discriminator(
        _rule_kind,
        custom_error_type="rule_kind",
        custom_error_message="a rule is a mapping with exactly one key, one of: "
        + ", ".join(RULE_KINDS),
    ),
]

for _group in (AnyOf, AllOf, NoneOf, AtLeastSpec, AtLeast):
    _group.model_rebuild()


def rule_kind(rule: Model) -> str:
    return _KIND_OF_MODEL[type(rule)]


def rule_body(rule: Model) -> Any:
    """The inner spec of a rule (``ConditionSpec``, list of rules for groups, ...)."""
    return getattr(rule, rule_kind(rule))


def describe_rule(rule: Model, names: CodeNames | None = None) -> str:
    kind, body = rule_kind(rule), rule_body(rule)
    if kind == "any_of":
        return "any of (" + "; ".join(describe_rule(r, names) for r in body) + ")"
    if kind == "all_of":
        return "all of (" + "; ".join(describe_rule(r, names) for r in body) + ")"
    if kind == "none_of":
        return "none of (" + "; ".join(describe_rule(r, names) for r in body) + ")"
    if kind == "demographics":
        return body.describe().replace("Demographics: ", "demographics ", 1)
    if kind == "at_least":
        inner = "; ".join(describe_rule(r, names) for r in body.of)
        return f"at least {body.n} of ({inner})"
    return body.describe(names)


def rule_codes(rule: Model) -> list[tuple[str, str]]:
    """Every (vocabulary, code) pair a rule names, groups included."""
    kind, body = rule_kind(rule), rule_body(rule)
    if kind in ("any_of", "all_of", "none_of"):
        return [pair for r in body for pair in rule_codes(r)]
    if kind == "at_least":
        return [pair for r in body.of for pair in rule_codes(r)]
    return [*getattr(body, "codeset", ()), *getattr(body, "among_codeset", ())]


# --- Demographics and the whole criteria ------------------------------------------------------


def check_size(data: Any) -> None:
    """Refuse more than MAX_RULES rules or groups nested deeper than MAX_NESTING.

    Runs on the raw document, before the rules are validated one by one, and walks it without
    recursion: the size of what is refused does not matter.
    """
    if not isinstance(data, dict):
        return
    stack: list[tuple[str, Any, int]] = []
    for side in ("exclude", "include"):
        rules = data.get(side)
        if isinstance(rules, list):
            stack += [(f"{side}[{i}]", r, 0) for i, r in reversed(list(enumerate(rules)))]
    count = 0
    while stack:
        path, rule, depth = stack.pop()
        count += 1
        if count > MAX_RULES:
            raise ValueError(
                f"more than {MAX_RULES} rules (the limit; groups and the rules in them all count)"
            )
        if not isinstance(rule, dict) or len(rule) != 1:
            continue
        kind, body = next(iter(rule.items()))
        inner, where = body, f"{path}.{kind}"
        if kind == "at_least" and isinstance(body, dict):
            inner, where = body.get("of"), f"{path}.at_least.of"
        if kind not in GROUP_KINDS or not isinstance(inner, list):
            continue
        if depth + 1 > MAX_NESTING:
            raise ValueError(f"{path}: groups nested more than {MAX_NESTING} deep (the limit)")
        stack += [(f"{where}[{i}]", r, depth + 1) for i, r in reversed(list(enumerate(inner)))]


def _iso_date(value: Any) -> Any:
    # Refuse numbers (pydantic would read them as Unix timestamps).
    if value is None or isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError("must be a date written YYYY-MM-DD")


class EntryPeriod(Model):
    """The days on which a person may enter, both ends inclusive."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    start: date = Field(alias="from")
    end: date = Field(alias="to")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _dates(cls, value: Any) -> Any:
        return _iso_date(value)

    @model_validator(mode="after")
    def _order(self) -> EntryPeriod:
        if self.start > self.end:
            raise ValueError(f"from ({self.start}) is after to ({self.end})")
        return self


ENTRY_KINDS = ("condition", "drug", "procedure", "measurement", "observation")


class Entry(Model):
    """Each person's own index date: the date of their first (or latest) record of an event.

    ``first``: the person's first record in all their history, entering only if it lies in
    the period (so someone whose first record is before the period never enters). ``latest``:
    their last record in the period. The person must be under observation on that date and
    not have died before it.
    """

    event: Rule
    occurrence: Literal["first", "latest"] = "first"
    period: EntryPeriod

    @field_validator("event")
    @classmethod
    def _event(cls, rule: Model) -> Model:
        kind = rule_kind(rule)
        if kind not in ENTRY_KINDS:
            raise ValueError(f"the entry event is a record rule, one of: {', '.join(ENTRY_KINDS)}")
        spec = rule_body(rule)
        if (
            spec.within is not None
            or spec.min_count != 1
            or getattr(spec, "latest", False)
            or getattr(spec, "exposure", None) is not None
        ):
            raise ValueError(
                "the entry event takes codes, vocabulary, exclude_codes and value only "
                "(occurrence and period say which record and when)"
            )
        return rule

    @property
    def spec(self) -> EventSpec:
        return rule_body(self.event)

    def describe(self) -> str:
        return (
            f"{'First' if self.occurrence == 'first' else 'Latest'} "
            f"{describe_rule(self.event).rsplit(' before the index date', 1)[0]} "
            f"from {self.period.start.isoformat()} to {self.period.end.isoformat()}, "
            "under observation on that date"
        )


class Criteria(Model):
    name: str = Field(default="Unnamed criteria", max_length=MAX_NAME)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    index_date: date | None = None
    entry: Entry | None = None
    demographics: Demographics = Demographics()
    include: list[Rule] = Field(default_factory=list)
    exclude: list[Rule] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _size(cls, data: Any) -> Any:
        check_size(data)
        return data

    @field_validator("index_date", mode="before")
    @classmethod
    def _index_date(cls, value: Any) -> Any:
        return _iso_date(value)

    @model_validator(mode="after")
    def _one_index(self) -> Criteria:
        if self.entry is not None and self.index_date is not None:
            raise ValueError(
                "give index_date (one date for everyone) or entry (each person's own), not both"
            )
        return self

    @property
    def whole_region(self) -> bool:
        """No demographics and no rules: everyone alive and under observation."""
        return self.demographics.empty and not self.include and not self.exclude

    def effective_index_date(self, override: date | None = None, *, strict: bool = False) -> date:
        """The index date; with ``entry``, the period's last day (the last anyone can enter,
        which labels the question: each person's own date comes from the records). An
        engine given another date ignores it; ``strict`` (a user's ``--index-date``) refuses
        it."""
        if self.entry is not None:
            if strict and override is not None and override != self.entry.period.end:
                raise InputError(
                    "these criteria give each person their own index date (entry): "
                    "an index date cannot be given too"
                )
            return self.entry.period.end
        return override or self.index_date or clock.today()

    def steps(self, names: CodeNames | None = None) -> list[tuple[str, str, Model | None]]:
        """Attrition steps in order: (kind, description, rule); kind is include/exclude.
        ``names``: code names to show beside the codes (``Region.code_names``)."""
        steps: list[tuple[str, str, Model | None]] = [
            ("demographics", self.demographics.describe(), None)
        ]
        steps += [("include", f"Include: {describe_rule(r, names)}", r) for r in self.include]
        steps += [("exclude", f"Exclude: {describe_rule(r, names)}", r) for r in self.exclude]
        return steps

    def codes(self) -> list[tuple[str, str]]:
        """Every (vocabulary, code) pair the rules name, once each, in order."""
        rules = [*self.include, *self.exclude]
        return list(dict.fromkeys(pair for r in rules for pair in rule_codes(r)))

    def fingerprint(self, index_date: date | None = None) -> str:
        """A stable hash of what is asked (not of its name): the same question, the same hash.

        Canonical JSON (sorted keys, no whitespace) of the criteria with the effective index
        date, so the privacy layer can recognise repeated or overlapping queries.
        """
        document = self.model_dump(mode="json", exclude={"name", "description"})
        document["index_date"] = self.effective_index_date(index_date).isoformat()
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- Loading ---------------------------------------------------------------------------------


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model whose field ``loc`` ends in (a pydantic error location), or None."""
    model: type[BaseModel] | None = Criteria
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if model is None:  # a list of rules or a rule: the tag names the rule's model
            model = RULE_KINDS.get(str(part))
            continue
        fields = {f.alias or n: f for n, f in model.model_fields.items()}
        if part not in fields:
            continue  # a repeated discriminator tag (include.0.drug.drug)
        model = _inner_model(fields[part].annotation)
        if model in _KIND_OF_MODEL:  # a rule or list of rules: the next part is its tag
            model = None
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _explain(path: str, error: Any) -> str | None:
    """Unknown fields are named with the fields allowed there."""
    if error["type"] != "extra_forbidden":
        return None
    model = _model_at(tuple(error["loc"]))
    if model is None:
        return None
    allowed = ", ".join(f.alias or n for n, f in model.model_fields.items())
    return f"unknown field; allowed here: {allowed}"


def parse_criteria(data: Any, source: str = "criteria") -> Criteria:
    """Validate decoded YAML/JSON (or a ``documents.Document``); one error names every problem."""
    document = data if isinstance(data, documents.Document) else documents.Document(data, source)
    if not isinstance(document.data, dict):
        raise DocumentError(
            f"{document.source}: the criteria must be a mapping (name, demographics, ...)"
        )
    return documents.validate(Criteria, document, "criteria", explain=_explain)


def criteria_from_text(text: str, source: str = "criteria") -> Criteria:
    """Criteria from YAML text (JSON is YAML too), within the document limits."""
    return parse_criteria(documents.parse_yaml(text, source))


def load_criteria(path: str | Path) -> Criteria:
    """Read criteria from a YAML or JSON file."""
    return parse_criteria(documents.read_file(path, "criteria"))

"""The one settings tree of a deployment, read from the environment (prefix ``BRYGGA_``).

This module is the only reader of the environment (a test walks ``src/`` for other reads).
Sections are nested models; a variable names its section and field joined by ``_``:
``BRYGGA_DISCLOSURE_THRESHOLD`` is ``settings.disclosure.threshold``,
``BRYGGA_NOISE_EPSILON`` is ``settings.noise.epsilon``, ``BRYGGA_SPARK_REMOTE`` is
``settings.spark.remote``. A bad value is an ``InputError`` naming the variable.
"""

from __future__ import annotations

__all__ = [
    "PREFIX",
    "AccessSettings",
    "CatalogueSettings",
    "ContactSettings",
    "DisclosureSettings",
    "EcosystemSettings",
    "NoiseSettings",
    "NotifySettings",
    "QuestionSettings",
    "Settings",
    "SettingsError",
    "SparkSettings",
    "WebSettings",
    "clear_settings_cache",
    "get_settings",
    "secret",
    "settings_error",
    "variable",
]

import ipaddress
import os
import threading
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from brygga.errors import InputError

PREFIX = "BRYGGA_"


class DisclosureSettings(BaseModel):
    """The deployment's disclosure policy (``BRYGGA_DISCLOSURE_*``; privacy/disclosure.py)."""

    method: Literal["rounding", "cell-key"] = "rounding"
    # Counts 1 .. threshold-1 are suppressed; the smallest count shown is ``threshold``.
    threshold: int = Field(default=8, ge=1)
    rounding: int = Field(default=5, ge=1)
    # Cell Key Method: the largest perturbation and the p-table's variance (SCB/ABS-style
    # parameters), or a p-table CSV (columns perturbation,probability) instead of them.
    ckm_max_perturbation: int = Field(default=2, ge=1)
    ckm_variance: float = Field(default=1.0, gt=0)
    ckm_ptable: Path | None = None

    @model_validator(mode="after")
    def _noise_below_threshold(self) -> DisclosureSettings:
        # A perturbation at least as large as the threshold could turn a shown count into 0.
        if self.method == "cell-key" and self.ckm_max_perturbation >= self.threshold:
            raise ValueError("ckm_max_perturbation must be smaller than threshold")
        return self


class NoiseSettings(BaseModel):
    """Noisy feasibility answers (``BRYGGA_NOISE_*``; privacy/noise.py)."""

    mechanism: Literal["none", "laplace", "gaussian"] = "none"
    epsilon: float = Field(default=0.5, gt=0)  # MII feasibility uses 0.5
    delta: float = Field(default=1e-6, gt=0, lt=1)  # Gaussian only
    rounding: int = Field(default=10, ge=1)
    rate_limit: int = Field(default=60, ge=1)  # requests per user per window
    rate_window_minutes: int = Field(default=60, ge=1)


class SparkSettings(BaseModel):
    """The Spark engine (``BRYGGA_SPARK_*``; cohort/engines.py, docs/spark.md)."""

    master: str = "local[2]"
    remote: str | None = None
    shuffle_partitions: int = 4
    driver_memory: str = "2g"
    # Any further Spark settings, as JSON: BRYGGA_SPARK_CONF='{"spark.executor.memory": "8g"}'.
    conf: dict[str, str] = {}


class WebSettings(BaseModel):
    """``brygga serve`` behind a reverse proxy (``BRYGGA_WEB_*``)."""

    # Browsers reach the server over https (a TLS-terminating proxy): session and CSRF cookies
    # get ``Secure`` and every response ``Strict-Transport-Security``.
    behind_tls: bool = False
    # Proxies whose X-Forwarded-For is believed (addresses or networks, comma-separated). Only
    # a request whose immediate peer is one of them gets its client address from the header;
    # by default none is trusted, so a forged header changes nothing.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
    # Compute the public /agenda and /halsolaget figures in the background when the server
    # starts, so the first visitor does not wait for them (a minute on a large region).
    warm_public_pages: bool = True

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        for item in value if isinstance(value, list | tuple) else ():
            try:
                ipaddress.ip_network(str(item), strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value


class QuestionSettings(BaseModel):
    """Limits on feasibility questions (``privacy.questions``, security property 7), from
    ``BRYGGA_QUESTIONS_<NAME>`` (e.g. ``BRYGGA_QUESTIONS_USER_BUDGET=100``).

    The defaults let a researcher refine a study's criteria for a working day, and stop a
    differencing sweep (many near-identical questions whose answers are subtracted) after a
    handful of answers: docs/privacy.md says what that leaves an attacker.
    """

    rate_limit: int = Field(default=10, ge=1)  # questions per user per rate window
    rate_window_minutes: int = Field(default=10, ge=1)
    user_budget: int = Field(default=30, ge=1)  # answered questions per user per budget window
    study_budget: int = Field(default=20, ge=1)  # answered questions per study per budget window
    budget_window_days: int = Field(default=30, ge=1)
    # Distinct near-identical questions (same criteria up to numbers, or a similar set of
    # rules and codes) answered per user or study in the sweep window; one more is refused and
    # reported to the research office.
    sweep_limit: int = Field(default=6, ge=1)
    sweep_window_days: int = Field(default=30, ge=1)
    similarity: float = Field(default=0.75, gt=0, le=1)  # Jaccard over the criteria's atoms


class AccessSettings(BaseModel):
    """Health-data access (``BRYGGA_ACCESS_*``; access/): deadlines and output checking."""

    # EHDS art. 68: a health data access body decides on an application within 90 days (it
    # may extend once); the data is then made available within this many days of the permit.
    decision_days: int = Field(default=90, ge=1)
    delivery_days: int = Field(default=60, ge=1)
    # Output checking (OpenSAFELY's model): every combination of an extract's quasi-identifiers
    # must occur at least k times; an anonymised extract is made k-anonymous with this k.
    extract_k: int = Field(default=5, ge=2)
    # The (n, k) dominance rule for sums: the n largest contributors to a cell may make up at
    # most this share of it (2 and 0.85: the usual NSI parameters).
    dominance_n: int = Field(default=2, ge=1)
    dominance_share: float = Field(default=0.85, gt=0, le=1)
    # Records an anonymised extract may drop (the anonymizer's suppression limit).
    anonymise_suppression: float = Field(default=0.05, ge=0, le=1)


class EcosystemSettings(BaseModel):
    """The ecosystem directory (ecosystem/directory.py)."""

    # A published profile is shown this many days after its review, then expires unless it is
    # renewed (the Enterprise Europe Network's partnering profiles expire the same way).
    validity_days: int = Field(default=365, ge=1, le=3650)


class CatalogueSettings(BaseModel):
    """Who publishes the dataset catalogue (``brygga catalogue``, ``/data``), from
    ``BRYGGA_CATALOGUE_<NAME>``. DCAT-AP requires a publisher and HealthDCAT-AP a contact point;
    a deployment sets its own."""

    # Base of every IRI in the catalogue and of its links; default: the service's public
    # address (``BRYGGA_NOTIFY_PUBLIC_URL``), which the messages' links use too.
    base_url: str | None = None
    # The publishing organization; default "Region <region name>" (e.g. Region Skåne).
    publisher: str | None = None
    publisher_url: str | None = None  # its web site; default base_url
    contact_name: str = "Forskningsdata"  # a functional mailbox, not a person
    contact_email: str = "forskningsdata@region.example"


class ContactSettings(BaseModel):
    """The region's addresses on the information pages (/kontakt, /om-personuppgifter,
    /tillganglighet), from ``BRYGGA_CONTACT_<NAME>``. A deployment sets its own (the
    accessibility statement must say how to reach the region); a line or paragraph whose
    address is not set is left out rather than shown with a made-up one. The demo sets
    example addresses (``demo.DEMO_CONTACT``)."""

    email: str | None = None  # residents' questions about Brygga and their account
    phone: str | None = None
    postal_address: str | None = None  # one line, e.g. "Region X, Brygga, Box 1, 123 45 Stad"
    research_office_email: str | None = None
    support_email: str | None = None  # technical support and the API
    dpo_email: str | None = None  # the region's data protection officer
    dpo_postal_address: str | None = None


class NotifySettings(BaseModel):
    """Notifications: the outbox's senders and the server's delivery schedule
    (``BRYGGA_NOTIFY_*``; studies/outbox.py, studies/senders.py, docs/configuration.md)."""

    # E-mail goes through ``smtp`` (a relay of the region) or, in the demo and in tests, to a
    # file of JSON lines. SMS has no gateway here: it always goes to the file (``sms_sender``
    # names the choice so that a gateway is one more value, not a new setting).
    sender: Literal["file", "smtp"] = "file"
    sms_sender: Literal["file"] = "file"
    file: Path | None = None  # default: <data dir>/outbox/messages.jsonl
    # The service's public address: links in messages are made from it (/portal for
    # residents, /studies/{id}/contacts for a study team).
    public_url: str = "http://127.0.0.1:8000"
    smtp_host: str = "localhost"
    smtp_port: int | None = Field(default=None, ge=1, le=65535)  # default by security: 587/465/25
    # starttls: plain connection upgraded with STARTTLS (port 587); ssl: TLS from the first
    # byte (port 465); none: no encryption, only for a relay on the same host or in tests.
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str | None = None  # e.g. "Brygga <noreply@region.example>"; required for smtp
    smtp_timeout: float = Field(default=30.0, gt=0)  # seconds per connection and command
    smtp_ca_file: Path | None = None  # a private CA for the relay's certificate
    # The server flushes the outbox every ``interval_seconds`` (0: never; then run
    # ``brygga notify`` from a timer). Every worker does; a claim keeps each message to one.
    interval_seconds: float = Field(default=30.0, ge=0)
    batch: int = Field(default=100, ge=1)  # messages claimed at a time
    # A claim not finished within ``lease_seconds`` (a worker died) is taken over by another.
    lease_seconds: int = Field(default=600, ge=1)
    # A failed send is retried after retry_seconds, doubling up to retry_max_seconds, and
    # given up after max_attempts (a permanent refusal, 5xx, at once).
    retry_seconds: int = Field(default=60, ge=1)
    retry_max_seconds: int = Field(default=21_600, ge=1)
    max_attempts: int = Field(default=10, ge=1)

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _smtp(self) -> NotifySettings:
        if self.sender == "smtp" and not self.smtp_from:
            raise ValueError("smtp_from is required when sender is smtp")
        # A password must not cross the network in clear.
        if self.smtp_username and self.smtp_security == "none":
            raise ValueError("smtp_username needs smtp_security starttls or ssl")
        return self


class Settings(BaseSettings):
    # Nested sections split once at the first "_" after the prefix, so the variables keep
    # their names (BRYGGA_DISCLOSURE_CKM_MAX_PERTURBATION -> disclosure.ckm_max_perturbation);
    # plain fields (BRYGGA_DATA_DIR) are matched whole.
    model_config = SettingsConfigDict(
        env_prefix=PREFIX, extra="ignore", env_nested_delimiter="_", env_nested_max_split=1
    )

    data_dir: Path = Path("data")
    engine: str = "duckdb"
    database_url: str | None = None
    duckdb_threads: int | None = None
    duckdb_memory_limit: str | None = None
    # The DuckDB engine's arrays and kept rule bitmaps beside an optimized database
    # (cohort/stored.py): a new process answers from them; false: DuckDB answers everything.
    cohort_cache: bool = True
    # Rules answered from the code arrays ``brygga optimize`` writes (cohort/codearrays.py)
    # instead of DuckDB; false: every rule through DuckDB's SQL (for comparison, or a fault).
    cohort_code_arrays: bool = True
    # Threads a question's rules never computed before are found on at once, from the code
    # arrays (cohort/bitmaps.py, ``_side_by_side``); 1: one after another. 2 nearly halves a
    # new question's time on an otherwise idle two-core machine, but slowed it by half to
    # double when the cores were busy with other work (measured, bench/README.md).
    cohort_threads: int = Field(default=1, ge=1, le=16)
    # Signs the web's session and CSRF cookies; a random one per process when unset (sessions
    # then end when the server restarts).
    secret_key: SecretStr | None = None
    # The pseudonym key (privacy/pseudonym.py): a file holding it, or the key itself.
    pseudonym_key_file: Path | None = None
    pseudonym_key: SecretStr | None = None
    oidc_client_secret: SecretStr | None = None  # never a command-line argument
    # Who asks, for the noisy-answer rate limit when no web user is logged in (else the OS user).
    user: str | None = None
    # A file to append one JSON line per group-commit batch and checkpoint to (diagnostics).
    group_commit_trace: Path | None = None
    # Web request bodies (security property 8): a larger one is answered 413 before it is read,
    # routed or its sender checked. The study form carries a criteria file of up to 2 MB.
    max_body_bytes: int = 1_000_000
    max_upload_body_bytes: int = 3_000_000
    # Prevention programs (YAML) the care units see in the browser; default <data_dir>/programs.
    programs_dir: Path | None = None

    disclosure: DisclosureSettings = DisclosureSettings()
    noise: NoiseSettings = NoiseSettings()
    spark: SparkSettings = SparkSettings()
    web: WebSettings = WebSettings()
    questions: QuestionSettings = QuestionSettings()
    access: AccessSettings = AccessSettings()
    ecosystem: EcosystemSettings = EcosystemSettings()
    notify: NotifySettings = NotifySettings()
    catalogue: CatalogueSettings = CatalogueSettings()
    contact: ContactSettings = ContactSettings()


class SettingsError(InputError):
    """A setting in the environment has a value that is not allowed."""


def variable(loc: tuple[int | str, ...]) -> str:
    """The environment variable of a field path: ("disclosure", "threshold") ->
    BRYGGA_DISCLOSURE_THRESHOLD."""
    return PREFIX + "_".join(str(p) for p in loc).upper()


def settings_error(exc: ValidationError, section: str = "") -> SettingsError:
    first = exc.errors()[0]
    loc = tuple(first["loc"])
    if section and (not loc or loc[0] != section):
        loc = (section, *loc)
    sections = {n for n, f in Settings.model_fields.items() if isinstance(f.default, BaseModel)}
    name = variable(loc) if loc else f"{PREFIX}{section.upper()}"
    if len(loc) == 1 and loc[0] in sections:
        name += "_*"  # a rule across the section's fields
    label = f"{loc[0]} settings: " if loc and loc[0] in sections else "settings: "
    return SettingsError(f"{label}{name}: {first['msg']}")


_cache: dict[tuple[tuple[str, str], ...], Settings] = {}
_cache_lock = threading.Lock()


def get_settings() -> Settings:
    """The settings for the current environment.

    Building ``Settings`` costs about a millisecond (pydantic-settings reads and validates the
    whole environment), and the audit log and database look them up on every request. So they
    are cached, keyed by the ``BRYGGA_*`` variables: a changed variable (a test's
    ``monkeypatch.setenv``, a CLI option written to the environment) gives fresh settings
    without anyone having to clear the cache.
    """
    env = os.environ
    key = tuple(sorted((k, env[k]) for k in env if k[:7].upper() == PREFIX))
    settings = _cache.get(key)
    if settings is None:
        try:
            settings = Settings()
        except ValidationError as exc:
            raise settings_error(exc) from None
        with _cache_lock:
            if len(_cache) > 64:  # a long test run sets many data dirs
                _cache.clear()
            _cache[key] = settings
    return settings


def clear_settings_cache() -> None:
    with _cache_lock:
        _cache.clear()


def secret(value: SecretStr | None) -> str | None:
    """The plain text of a secret setting, or None when unset or empty."""
    return (value.get_secret_value() or None) if value is not None else None


get_settings.cache_clear = clear_settings_cache  # type: ignore[attr-defined]

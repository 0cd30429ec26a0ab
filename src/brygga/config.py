"""Settings for a deployment, read from the environment (prefix ``BRYGGA_``)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "BRYGGA_"


class QuestionSettings(BaseModel):
    """Limits on feasibility questions (``privacy.questions``, security property 7), from
    ``BRYGGA_QUESTIONS__<NAME>`` (e.g. ``BRYGGA_QUESTIONS__USER_BUDGET=100``).

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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", env_nested_delimiter="__")

    data_dir: Path = Path("data")
    engine: str = "duckdb"
    database_url: str | None = None
    duckdb_threads: int | None = None
    duckdb_memory_limit: str | None = None
    # The link in notifications (studies.outbox): where residents log in to read invitations.
    portal_url: str = "http://127.0.0.1:8000/portal"
    questions: QuestionSettings = QuestionSettings()


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
        settings = Settings()
        with _cache_lock:
            if len(_cache) > 64:  # a long test run sets many data dirs
                _cache.clear()
            _cache[key] = settings
    return settings


def clear_settings_cache() -> None:
    with _cache_lock:
        _cache.clear()


get_settings.cache_clear = clear_settings_cache  # type: ignore[attr-defined]

"""Settings for a deployment, read from the environment (prefix ``BRYGGA_``)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "BRYGGA_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore")

    data_dir: Path = Path("data")
    engine: str = "duckdb"
    database_url: str | None = None
    duckdb_threads: int | None = None
    duckdb_memory_limit: str | None = None
    # The link in notifications (studies.outbox): where residents log in to read invitations.
    portal_url: str = "http://127.0.0.1:8000/portal"
    # Web request bodies (security property 8): a larger one is answered 413 before it is read,
    # routed or its sender checked. The study form carries a criteria file of up to 2 MB.
    max_body_bytes: int = 1_000_000
    max_upload_body_bytes: int = 3_000_000


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

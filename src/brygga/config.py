"""Settings for a deployment, read from the environment (prefix ``BRYGGA_``)."""

from __future__ import annotations

import ipaddress
import os
import threading
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PREFIX = "BRYGGA_"


class WebSettings(BaseModel):
    """``brygga serve`` behind a reverse proxy (``BRYGGA_WEB__...``)."""

    # Browsers reach the server over https (a TLS-terminating proxy): session and CSRF cookies
    # get ``Secure`` and every response ``Strict-Transport-Security``.
    behind_tls: bool = False
    # Proxies whose X-Forwarded-For is believed (addresses or networks, comma-separated). Only
    # a request whose immediate peer is one of them gets its client address from the header;
    # by default none is trusted, so a forged header changes nothing.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()

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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Path("data")
    engine: str = "duckdb"
    database_url: str | None = None
    duckdb_threads: int | None = None
    duckdb_memory_limit: str | None = None
    # The link in notifications (studies.outbox): where residents log in to read invitations.
    portal_url: str = "http://127.0.0.1:8000/portal"
    web: WebSettings = WebSettings()


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

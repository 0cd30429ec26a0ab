"""Settings for a deployment, read from the environment (prefix ``BRYGGA_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BRYGGA_", extra="ignore")

    data_dir: Path = Path("data")
    engine: str = "duckdb"
    database_url: str | None = None
    duckdb_threads: int | None = None
    duckdb_memory_limit: str | None = None


def get_settings() -> Settings:
    return Settings()

"""Run the Alembic migrations programmatically (``brygga db-upgrade`` and tests)."""

from __future__ import annotations

__all__ = ["MIGRATIONS", "alembic_config", "ensure_current", "upgrade"]

from pathlib import Path

from brygga.db.direct import database_url, is_current

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str):  # -> alembic.config.Config
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str | None = None, revision: str = "head") -> str:
    """Bring the database at ``url`` (default: the configured one) up to ``revision``."""
    from alembic import command

    from brygga.db.session import engine

    url = url or database_url()
    with engine(url).begin() as connection:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return url


_current: set[str] = set()


def ensure_current(url: str | None = None) -> str:
    """``upgrade`` once per process and database: for code paths that write to the database
    outside a deployment step (tests, the CLI on a fresh data folder). A SQLite database
    already at the newest migration is only looked at (``direct.is_current``): a new process
    need not load Alembic and SQLAlchemy to learn that there is nothing to do."""
    url = url or database_url()
    if url not in _current:
        if not is_current(url):
            upgrade(url)
        _current.add(url)
    return url

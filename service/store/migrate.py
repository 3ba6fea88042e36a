"""Alembic migrations run from code: the app and the workers call upgrade() at start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from service.store.engine import make_engine
from service.store.errors import MigrationError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any constant shared by all our processes: several starting at once migrate one after another.
_PG_MIGRATION_LOCK = 0x44_69_61_72_79_42  # "DiaryB"


def alembic_config(
    database_url: str | URL | None = None, connection: Connection | None = None
) -> Config:
    """An Alembic Config pointing at our migrations; no alembic.ini needed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url is not None:
        # '%' must be doubled for ConfigParser interpolation.
        rendered = (
            database_url.render_as_string(hide_password=False)
            if isinstance(database_url, URL)
            else database_url
        )
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def upgrade(database: str | URL | Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (default: the newest); safe to call from many processes."""
    engine = database if isinstance(database, Engine) else make_engine(database)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                )
            command.upgrade(alembic_config(connection=connection), revision)
    except SQLAlchemyError as exc:
        raise MigrationError(f"schema upgrade failed: {type(exc).__name__}") from exc
    finally:
        if engine is not database:
            engine.dispose()


def head_revision() -> str:
    """The newest revision the code ships."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise MigrationError("no migrations found")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()

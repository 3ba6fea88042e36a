"""Alembic migrations run from code: the app and the workers call upgrade() at start."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from service.store.engine import make_engine
from service.store.errors import MigrationError, StorageUnavailable

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


class SchemaGate:
    """upgrade() once per process; a database that cannot be reached at start is tried again
    on use (at most every `retry_every` seconds), so the app starts and answers 503 meanwhile."""

    def __init__(self, engine: Engine, retry_every: float = 2.0) -> None:
        self.engine = engine
        self.retry_every = retry_every
        self._done = False
        self._lock = threading.Lock()
        self._failed_at: float | None = None
        self._failure: StorageUnavailable | None = None

    def ensure(self) -> None:
        """Return once the schema is current; raise StorageUnavailable while it cannot be."""
        if self._done:
            return
        with self._lock:
            if self._done:
                return
            failure, failed_at = self._failure, self._failed_at
            if (
                failure
                and failed_at is not None
                and time.monotonic() - failed_at < self.retry_every
            ):
                raise StorageUnavailable(failure.kind, failure.retry_after)
            try:
                upgrade(self.engine)
            except StorageUnavailable as exc:
                self._failure, self._failed_at = exc, time.monotonic()
                raise
            self._done = True


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

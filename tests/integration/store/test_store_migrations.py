"""Migrations build the schema from empty on both backends and agree with the models."""

from __future__ import annotations

import threading

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from service.store import current_revision, head_revision, make_engine, upgrade
from service.store.migrate import alembic_config
from service.store.models import Base

SYNC_TABLES = {"ledger_entry", "ledger_resource", "sync_request", "sync_request_item", "audit_log"}
# Every table the models declare (other areas add theirs, e.g. export_job).
TABLES = set(Base.metadata.tables)


def test_upgrade_from_empty_creates_every_table(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) is None
        upgrade(database_url)
        assert current_revision(engine) == head_revision()
        assert SYNC_TABLES <= TABLES
        assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
        upgrade(database_url)  # a second start changes nothing
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_models_and_migrations_agree(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_downgrade_to_base_and_up_again(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection=connection), "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(engine)
        assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
    finally:
        engine.dispose()


def test_processes_starting_together_migrate_once(database_url: str) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def boot() -> None:
        try:
            start.wait()
            upgrade(database_url)
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=boot) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()

"""Pure parts of the store: canonical hashing, backoff, UTC columns, SQLite engine settings."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite

from service.store import ErrorInfo, InvalidItemError, backoff_seconds, canonical_json, content_hash
from service.store.coltypes import UtcDateTime
from service.store.engine import make_engine, normalise_url


def test_canonical_json_ignores_key_order_and_whitespace() -> None:
    a = {"b": [1, {"y": 2, "x": 1}], "a": "ü"}
    b = {"a": "ü", "b": [1, {"x": 1, "y": 2}]}
    assert canonical_json(a) == canonical_json(b) == '{"a":"ü","b":[1,{"x":1,"y":2}]}'
    assert content_hash(a) == content_hash(b)
    assert len(content_hash(a)) == 64


def test_content_hash_changes_with_any_value() -> None:
    assert content_hash({"fatigue": 3}) != content_hash({"fatigue": 4})
    assert content_hash({"fatigue": 3}) != content_hash({"fatigue": "3"})
    assert content_hash([1, 2]) != content_hash([2, 1])


@pytest.mark.parametrize("value", [{"at": datetime(2026, 1, 1)}, {"x": float("nan")}, {1: {2}}])
def test_non_json_records_are_refused(value: object) -> None:
    with pytest.raises(InvalidItemError):
        content_hash(value)


def test_backoff_doubles_from_thirty_seconds_up_to_an_hour() -> None:
    assert [backoff_seconds(n) for n in range(1, 9)] == [
        30.0,
        60.0,
        120.0,
        240.0,
        480.0,
        960.0,
        1920.0,
        3600.0,
    ]
    assert backoff_seconds(500) == 3600.0
    assert backoff_seconds(0) == 30.0


def test_error_info_stores_code_severity_expression_and_never_diagnostics() -> None:
    # A server's diagnostics may quote the refused body (notes, values): not for the database.
    info = ErrorInfo(409, "conflict", "quotes the body", "error", ("Observation.note",))
    assert info.as_json() == {
        "status": 409,
        "code": "conflict",
        "severity": "error",
        "expression": ["Observation.note"],
    }


def test_utc_datetime_refuses_naive_and_normalises_to_utc() -> None:
    column = UtcDateTime()
    plus_two = datetime(2026, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    with pytest.raises(ValueError, match="naive"):
        column.process_bind_param(datetime(2026, 3, 1), postgresql.dialect())
    assert column.process_bind_param(plus_two, sqlite.dialect()) == datetime(2026, 3, 1, 8, 0)
    assert column.process_bind_param(plus_two, postgresql.dialect()) == datetime(
        2026, 3, 1, 8, 0, tzinfo=UTC
    )
    back = column.process_result_value(datetime(2026, 3, 1, 8, 0), sqlite.dialect())
    assert back == plus_two
    assert back is not None and back.tzinfo is UTC


def test_sqlite_engine_uses_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "db.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            pragma = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
            }
        assert pragma == {
            "journal_mode": "wal",
            "busy_timeout": 10000,
            "foreign_keys": 1,
            "synchronous": 2,
        }
        assert path.exists()
    finally:
        engine.dispose()


def test_sqlite_transactions_take_the_write_lock_at_begin(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with engine.begin() as holder:
            holder.execute(text("SELECT 1"))  # only a read, yet the write lock is held
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again after commit
        other.execute("ROLLBACK")
    finally:
        other.close()
        engine.dispose()


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:///var/diarybridge.sqlite3", "sqlite"),
    ],
)
def test_normalise_url_picks_psycopg_for_postgresql(given: str, driver: str) -> None:
    assert normalise_url(given).drivername == driver

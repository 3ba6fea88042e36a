"""Engines and sessions: SQLite (default, WAL) or PostgreSQL via psycopg 3."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.orm import Session, sessionmaker

from service.store.errors import StorageUnavailable

SQLITE_BUSY_TIMEOUT_MS = 10_000

# SQLite primary result codes (https://sqlite.org/rescode.html) -> kind of storage failure.
_SQLITE_KINDS = {
    5: "busy",
    6: "busy",
    8: "read_only",
    10: "io_error",
    13: "full",
    14: "unreachable",
}
# The same by message, for drivers that don't expose the code.
_SQLITE_MESSAGES = {
    "database is locked": "busy",
    "attempt to write a readonly database": "read_only",
    "disk i/o error": "io_error",
    "database or disk is full": "full",
    "unable to open database file": "unreachable",
}
# PostgreSQL SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html).
_PG_KINDS = {
    "53100": "full",  # disk_full
    "25006": "read_only",  # read_only_sql_transaction (a standby, default_transaction_read_only)
    "57P01": "unreachable",  # admin_shutdown (pg_terminate_backend, a restart)
    "57P02": "unreachable",  # crash_shutdown
    "57P03": "unreachable",  # cannot_connect_now (starting up)
    "58030": "io_error",  # io_error
}
_PG_CLASS_KINDS = {"08": "unreachable", "53": "busy"}  # connection exception; out of resources
# What a client should wait before trying again, by kind: an operator must act on some.
RETRY_AFTER_SECONDS = {
    "busy": 2,
    "unreachable": 5,
    "read_only": 30,
    "full": 30,
    "io_error": 30,
}


def storage_failure(error: BaseException | None, is_disconnect: bool = False) -> str | None:
    """The kind of storage failure a driver error means, or None if it is not one (a bug,
    a constraint): full, read_only, unreachable, busy, io_error."""
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in _SQLITE_KINDS:
            return _SQLITE_KINDS[code & 0xFF]
        return _SQLITE_MESSAGES.get(str(error).strip().lower())
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return _PG_KINDS.get(sqlstate) or _PG_CLASS_KINDS.get(sqlstate[:2])
    if is_disconnect:
        return "unreachable"
    # psycopg raises OperationalError without a SQLSTATE when it cannot connect at all.
    if type(error).__name__ == "OperationalError" and type(error).__module__.startswith("psycopg"):
        return "unreachable"
    return None


def _raise_storage_unavailable(context: ExceptionContext) -> None:
    if context.is_pre_ping:
        return  # the pool's ping of a dead connection: it reconnects, the caller never knows
    kind = storage_failure(context.original_exception, context.is_disconnect)
    if kind is not None:
        # from None: the driver's text (SQL and its parameters) must not reach logs or answers.
        raise StorageUnavailable(kind, RETRY_AFTER_SECONDS[kind]) from None


def normalise_url(database_url: str | URL) -> URL:
    """Parse a database URL; plain postgresql:// and postgres:// use the psycopg 3 driver."""
    url = make_url(database_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def make_engine(database_url: str | URL, **kwargs: Any) -> Engine:
    """Create an engine for SQLite (WAL, busy_timeout, foreign keys) or PostgreSQL."""
    url = normalise_url(database_url)
    if url.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url, **kwargs)
    else:
        kwargs.setdefault("pool_pre_ping", True)
        if "connect_timeout" not in url.query:
            # A server that drops packets would otherwise hold every caller for minutes.
            kwargs.setdefault("connect_args", {"connect_timeout": 5})
        engine = create_engine(url, **kwargs)
    # Storage failures become one typed error, whichever driver and whichever layer meets them.
    event.listen(engine, "handle_error", _raise_storage_unavailable)
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit; use `with factory.begin() as s:`."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def _sqlite_engine(url: URL, **kwargs: Any) -> Engine:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so we can BEGIN IMMEDIATE ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        # FULL: a 202 promises the entry survives power loss, not only a process crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Take the write lock up front: a deferred transaction that reads and then writes fails
        # at once with SQLITE_BUSY when another writer committed meanwhile; busy_timeout can't help.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _enable_wal(cursor: Any) -> None:
    # WAL is stored in the file, so this only does work on a new database; but switching takes
    # a lock that busy_timeout does not wait for, so several processes starting at once retry.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)

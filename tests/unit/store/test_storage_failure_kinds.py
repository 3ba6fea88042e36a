"""Driver errors by kind: which mean "storage unavailable" (503) and which are bugs (500)."""

from __future__ import annotations

import sqlite3

import pytest

from service.store.engine import RETRY_AFTER_SECONDS, storage_failure


class PgError(Exception):
    """Stands in for a psycopg error: only its SQLSTATE matters."""

    def __init__(self, sqlstate: str | None) -> None:
        super().__init__("synthetic")
        self.sqlstate = sqlstate


def sqlite_error(code: int, message: str = "synthetic") -> sqlite3.Error:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (sqlite_error(13), "full"),
        (sqlite_error(8 | (5 << 8)), "read_only"),  # an extended code (READONLY_DBMOVED)
        (sqlite_error(5), "busy"),
        (sqlite_error(14), "unreachable"),
        (sqlite_error(10 | (3 << 8)), "io_error"),
        (sqlite3.OperationalError("database or disk is full"), "full"),
        (PgError("53100"), "full"),
        (PgError("25006"), "read_only"),
        (PgError("57P01"), "unreachable"),
        (PgError("08006"), "unreachable"),
        (PgError("53300"), "busy"),
    ],
)
def test_storage_failures_are_recognised_by_kind(error: BaseException, kind: str) -> None:
    assert storage_failure(error) == kind
    assert RETRY_AFTER_SECONDS[kind] > 0


@pytest.mark.parametrize(
    "error",
    [
        sqlite_error(19),  # a constraint: a bug or a race, not the storage
        sqlite_error(1),  # SQL error
        sqlite3.OperationalError("no such table: ledger_entry"),
        PgError("23505"),  # unique_violation
        PgError("42P01"),  # undefined_table
        ValueError("synthetic"),
    ],
)
def test_other_errors_are_not_storage_failures(error: BaseException) -> None:
    assert storage_failure(error) is None


def test_a_lost_connection_is_unreachable() -> None:
    assert storage_failure(PgError(None), is_disconnect=True) == "unreachable"

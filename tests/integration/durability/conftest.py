"""Fixtures of the durability tests: databases of their own, a controllable store clock, proxies."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.orm import Session, sessionmaker

from service.store import clock, ledger, make_engine, make_session_factory, outbox, upgrade
from tests.durability_proxy import FaultProxy

PG_ADMIN_DSN = os.environ.get(
    "DIARYBRIDGE_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new empty PostgreSQL database, dropped after; fails (never skips) without PostgreSQL."""
    name = f"diarybridge_dur_{uuid.uuid4().hex[:12]}"
    info = psycopg.conninfo.conninfo_to_dict(PG_ADMIN_DSN)
    try:
        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable ({PG_ADMIN_DSN}): {exc}", pytrace=False)
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield (
            f"postgresql+psycopg://{info.get('user', 'postgres')}@{info.get('host', '127.0.0.1')}"
            f":{info.get('port', '5432')}/{name}"
        )
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file database (shared by this process and worker processes)."""
    return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"


def migrated_sessions(url: str) -> sessionmaker[Session]:
    """Sessions on a database brought to the newest schema."""
    upgrade(url)
    return make_session_factory(make_engine(url))


@dataclass
class StoreClock:
    """The store's clock, moved forward by the test so backoffs pass without waiting."""

    offset: timedelta = timedelta(0)

    def now(self) -> datetime:
        """Real UTC time plus the offset."""
        return clock.utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass for the ledger (claims, leases and backoffs)."""
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
def store_clock(monkeypatch: pytest.MonkeyPatch) -> StoreClock:
    """Claims, reports and accepts in this process read the time from a StoreClock."""
    skewed = StoreClock()
    monkeypatch.setattr(outbox, "utcnow", skewed.now)
    monkeypatch.setattr(ledger, "utcnow", skewed.now)
    return skewed


@pytest.fixture
def proxies() -> Iterator[list[FaultProxy]]:
    """Proxies a test starts (append them); all stopped at the end."""
    started: list[FaultProxy] = []
    yield started
    for proxy in started:
        proxy.stop()

"""A database that cannot take writes (read-only, full) answers 503 `storage_unavailable` with
Retry-After, takes the instance out of rotation (/readyz 503), and loses nothing acknowledged
before; once the fault is lifted the service goes on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, event, make_url, text

from service import audit, wiring  # audit: the trail's use case, which writes the rows
from service.app import create_app
from service.config import Settings
from service.store import StorageUnavailable
from service.store.engine import RETRY_AFTER_SECONDS
from tests.api.contract import ContractClient
from tests.conftest import KEYS, make_env
from tests.durability_proxy.tcp import TcpGate
from tests.integration.durability.conftest import PG_ADMIN_DSN, migrated_sessions
from tests.integration.durability.helpers import diary_payloads, ledger, unique_patient, wait_until

pytestmark = pytest.mark.integration

ASYNC = {"X-API-Key": KEYS["batch"]["key"], "Prefer": "respond-async"}
Pragma = Callable[[Engine], str]


def contract_app(tmp_path: Path, **env: str) -> Flask:
    app = create_app(Settings.from_env(make_env(tmp_path, **env)))
    app.test_client_class = ContractClient
    return app


@contextmanager
def fault(engine: Engine, pragma: str) -> Iterator[None]:
    """Every new connection of the app runs `pragma` until the block ends."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(pragma)

    event.listen(engine, "connect", on_connect)
    engine.dispose()  # pooled connections were made before the fault
    try:
        yield
    finally:
        event.remove(engine, "connect", on_connect)
        engine.dispose()


def read_only(_engine: Engine) -> str:
    return "PRAGMA query_only = ON"


def full(engine: Engine) -> str:
    # A disk with no room left: the database may not grow by a single page.
    with engine.connect() as connection:
        pages = connection.execute(text("PRAGMA page_count")).scalar_one()
    return f"PRAGMA max_page_count = {pages}"


def assert_unavailable(response: Any) -> None:
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE, response.get_data(as_text=True)
    assert response.json["error"] == "storage_unavailable"
    assert int(response.headers["Retry-After"]) > 0
    assert "synthetic" not in response.get_data(as_text=True)  # no patient id, no SQL echo


@pytest.mark.parametrize("make_fault", [read_only, full], ids=["read-only", "disk-full"])
def test_a_store_that_cannot_write_answers_503_and_loses_nothing_acknowledged(
    tmp_path: Path, make_fault: Pragma
) -> None:
    app = contract_app(tmp_path)
    client: FlaskClient = app.test_client()
    engine: Engine = wiring.of(app).engine
    payloads = diary_payloads(unique_patient("store"), 160)
    before, during, after = payloads[:5], payloads[5:155], payloads[155:]
    for payload in before:
        assert client.post("/sync/diary-entries", json=payload, headers=ASYNC).status_code == 202
    assert client.get("/readyz").status_code == HTTPStatus.OK

    acknowledged = list(before)
    refused = 0
    with fault(engine, make_fault(engine)):
        for payload in during:  # the 150 syncs: each a clear 503 (none a 500)...
            response = client.post("/sync/diary-entries", json=payload, headers=ASYNC)
            if response.status_code == HTTPStatus.ACCEPTED:
                acknowledged.append(payload)  # ...but for what still fits in a page's free room
            else:
                assert_unavailable(response)
                refused += 1
        ready = client.get("/readyz")
        assert ready.status_code == HTTPStatus.SERVICE_UNAVAILABLE
        assert ready.json["checks"]["database"] == "failed"
        assert client.get("/healthz").status_code == HTTPStatus.OK  # alive, just not ready
    assert refused >= len(during) - 5

    assert client.get("/readyz").status_code == HTTPStatus.OK
    for payload in after:
        assert client.post("/sync/diary-entries", json=payload, headers=ASYNC).status_code == 202
    stored = ledger(wiring.of(app).sessions)
    assert sorted(stored) == sorted(p["entry_id"] for p in acknowledged + after)
    assert {status for status, _ in stored.values()} == {"queued"}


def test_a_write_failing_in_the_audit_hook_is_a_503_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = contract_app(tmp_path)
    client: FlaskClient = app.test_client()
    payload = diary_payloads(unique_patient("audit"), 1)[0]
    client.post("/sync/diary-entries", json=payload, headers=ASYNC)
    url = f"/sync/entries/diary-entry/{payload['entry_id']}"

    def disk_full(*_args: Any, **_kwargs: Any) -> int:
        raise StorageUnavailable("full", RETRY_AFTER_SECONDS["full"])

    # The view's read succeeds; the audit row it owes (written after the view, in a hook
    # Flask turns into a 500) cannot be, so the read is not answered either.
    monkeypatch.setattr(audit, "record_audit", disk_full)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production, not as in testing mode
    assert_unavailable(client.get(url, headers={"X-API-Key": KEYS["batch"]["key"]}))


def test_postgresql_refusing_connections_at_start_and_mid_run(
    postgres_url: str, tmp_path: Path
) -> None:
    url = make_url(postgres_url)
    gate = TcpGate((url.host or "127.0.0.1", url.port or 5432))  # shut: the port refuses
    through_gate = url.set(port=gate.port).render_as_string(hide_password=False)
    try:
        # The app starts although its database cannot be reached, and says so.
        app = contract_app(tmp_path, DATABASE_URL=through_gate)
        client: FlaskClient = app.test_client()
        payloads = diary_payloads(unique_patient("pg"), 6)
        acknowledged: list[dict[str, Any]] = []

        def send(payload: dict[str, Any]) -> int:
            response = client.post("/sync/diary-entries", json=payload, headers=ASYNC)
            if response.status_code == HTTPStatus.ACCEPTED:
                acknowledged.append(payload)
            else:
                assert_unavailable(response)
            return int(response.status_code)

        assert send(payloads[0]) == HTTPStatus.SERVICE_UNAVAILABLE
        assert client.get("/readyz").status_code == HTTPStatus.SERVICE_UNAVAILABLE
        assert client.get("/healthz").status_code == HTTPStatus.OK

        gate.open()  # PostgreSQL is back: the schema is made on first use, then all is normal
        wait_until(lambda: send(payloads[0]) == HTTPStatus.ACCEPTED, 20, "the database to serve")
        assert client.get("/readyz").status_code == HTTPStatus.OK
        assert send(payloads[1]) == HTTPStatus.ACCEPTED

        # Backends terminated under the pool (a PostgreSQL restart): pre-ping reconnects.
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (url.database,),
            ).fetchone()
        assert killed is not None and killed[0] >= 1
        assert send(payloads[2]) == HTTPStatus.ACCEPTED

        gate.shut()  # mid-run: connections cut, the port refuses
        assert send(payloads[3]) == HTTPStatus.SERVICE_UNAVAILABLE
        assert client.get("/readyz").status_code == HTTPStatus.SERVICE_UNAVAILABLE
        gate.open()
        wait_until(lambda: send(payloads[3]) == HTTPStatus.ACCEPTED, 20, "the database again")
        assert send(payloads[4]) == HTTPStatus.ACCEPTED
    finally:
        gate.shut()

    stored = ledger(migrated_sessions(postgres_url))
    assert sorted(stored) == sorted(p["entry_id"] for p in acknowledged)
    assert len(stored) == 5

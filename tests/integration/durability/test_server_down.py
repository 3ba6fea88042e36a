"""Records accepted while the FHIR server is down are kept, retried after a backoff, and delivered
exactly once when it is back."""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path

import pytest

from service import wiring
from service.app import create_app
from service.config import Settings
from service.store import backoff_seconds, list_entries
from service.sync.runtime import SyncRuntime
from tests.conftest import KEYS, make_env
from tests.fhir_server import RunningServer
from tests.integration.durability.conftest import StoreClock
from tests.integration.durability.helpers import (
    diary_payloads,
    expected_identifiers,
    infusion_payloads,
    records_of,
    server_identifiers,
    unique_patient,
)

pytestmark = pytest.mark.integration

BATCH = {"X-API-Key": KEYS["batch"]["key"], "Prefer": "respond-async"}
NAMESPACE = KEYS["batch"]["client_id"]


def test_accepted_while_the_server_is_down_then_delivered_once_when_it_is_back(
    private_fhir_server: RunningServer, tmp_path: Path, store_clock: StoreClock
) -> None:
    server = private_fhir_server
    patient = unique_patient("down")
    diaries, infusions = diary_payloads(patient, 10), infusion_payloads(patient, 2)
    env = make_env(
        tmp_path,
        DIARYBRIDGE_FHIR_BASE_URL=server.base_url,
        DIARYBRIDGE_FHIR_MAX_TRIES="2",  # the client gives up fast; the ledger retries later
        DIARYBRIDGE_FHIR_CHUNK_SIZE="30",
    )
    client = create_app(Settings.from_env(env)).test_client()
    runtime: SyncRuntime = wiring.of(client.application).sync

    server.stop()
    first = client.post("/sync/diary-entries", json=diaries, headers=BATCH)
    second = client.post("/sync/infusions", json=infusions, headers=BATCH)
    assert (first.status_code, second.status_code) == (HTTPStatus.ACCEPTED, HTTPStatus.ACCEPTED)

    # A worker runs while the server is down: nothing delivered, everything still queued.
    failed = runtime.worker().drain()
    assert len(failed) == 12 and {d.outcome.value for d in failed} == {"retry"}
    with runtime.sessions.begin() as session:
        queued = list_entries(session, "queued")
    assert len(queued) == 12
    assert all(e.attempts == 1 and not e.in_flight for e in queued)
    assert all(e.last_error and e.last_error["status"] is None for e in queued)  # no answer
    assert client.get(first.headers["Content-Location"], headers=BATCH).status_code == (
        HTTPStatus.ACCEPTED
    )

    server.start()
    # The backoff is honoured: the server is back, but nothing is due yet.
    assert runtime.worker().drain() == []
    store_clock.advance(backoff_seconds(1) + 1)
    delivered = runtime.worker().drain()
    assert sorted(d.outcome.value for d in delivered) == ["created"] * 12

    on_server = server_identifiers(server.base_url, patient)
    assert on_server == expected_identifiers(records_of(diaries, infusions), NAMESPACE)
    for response in (first, second):
        done = client.get(response.headers["Content-Location"], headers=BATCH)
        assert done.status_code == HTTPStatus.OK
        assert set(done.json["counts"]) == {"sent"}
    # Another worker pass finds nothing to do: no second copy can come from the queue.
    store_clock.advance(3600)
    assert runtime.worker().drain() == []
    assert server_identifiers(server.base_url, patient) == on_server

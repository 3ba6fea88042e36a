"""An import answers for every record of its input: a rerun never hides what never arrived.

The FHIR server is faked with `responses` (a real one will not refuse chosen records on demand;
tests/integration/test_import_roundtrip.py covers the command against the real one).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import responses
from sqlalchemy.orm import Session, sessionmaker

from service import store
from service.fhir_client import NO_RETRY, FhirClient
from service.imports import Importer
from service.sync.push import Pusher
from service.sync.worker import Worker
from tests.unit.imports.test_importer import NAMESPACE, diary, ndjson, sessions
from tests.unit.sync.test_sync_push import BASE, capability, outcome, transaction_response

__all__ = ["sessions"]  # the fixture, imported to be used here

RECORDS = [diary(i) for i in range(30)]
BAD = {r["entry_id"] for r in RECORDS[::4]}  # 8 of 30


class Server:
    """Refuses every transaction holding a bad record (422), or every one (503)."""

    def __init__(self) -> None:
        self.status = 422
        self.transactions = 0

    def __call__(self, request: Any) -> tuple[int, dict, str]:
        self.transactions += 1
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        if self.status >= 500 or (self.status and any(f"/{bad}/" in body for bad in BAD)):
            problem = outcome("invalid" if self.status < 500 else "transient", "refused")
            return self.status, {}, json.dumps(problem)
        return transaction_response(request)


@pytest.fixture
def server() -> Iterator[Server]:
    fake = Server()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{BASE}/metadata", json=capability())
        mock.add_callback(responses.POST, BASE, callback=fake)
        yield fake


def run(sessions: sessionmaker[Session]) -> tuple[Any, list[dict[str, Any]]]:
    client = FhirClient(BASE, retry=NO_RETRY)
    worker = Worker(sessions, lambda: Pusher(client))
    failures: list[dict[str, Any]] = []
    importer = Importer(sessions, NAMESPACE, worker=worker, on_failure=failures.append)
    importer.import_text(io.StringIO(ndjson(RECORDS)), "in.ndjson")
    return importer.finish(), failures


def test_a_rerun_reports_rejected_records_again_until_they_arrive(
    sessions: sessionmaker[Session], server: Server
) -> None:
    first, failures = run(sessions)
    assert (first.created, first.failed, first.not_delivered) == (22, 8, 8)
    assert {f["id"] for f in failures} == BAD

    again, failures = run(sessions)

    assert (again.created, again.unchanged, again.failed, again.not_delivered) == (0, 22, 8, 8)
    assert {(f["id"], f["message"]) for f in failures} == {
        (bad, "failed: invalid (HTTP 422)") for bad in BAD
    }
    assert again.line().endswith("; 8 not on the server: 8 failed: invalid (HTTP 422)")
    assert {f["position"] for f in failures} == {f"line {i + 1}" for i in range(0, 30, 4)}

    server.status = 0  # the server takes them now, once an operator requeued them
    with sessions.begin() as session:
        assert store.requeue_failed(session) == 8
    fixed, failures = run(sessions)
    assert (fixed.created, fixed.unchanged, fixed.not_delivered, failures) == (8, 22, 0, [])


def test_records_left_queued_for_a_retry_are_not_on_the_server_either(
    sessions: sessionmaker[Session], server: Server
) -> None:
    server.status = 503
    first, _ = run(sessions)
    assert (first.created, first.retry_later, first.not_delivered) == (0, 30, 30)
    sent = server.transactions

    again, failures = run(sessions)

    assert server.transactions == sent  # backing off: not pushed again yet
    assert (again.unchanged, again.retry_later, again.not_delivered) == (0, 30, 30)
    assert "30 left queued for retry" in again.line()
    assert {f["message"] for f in failures} == {"queued: transient (HTTP 503)"}

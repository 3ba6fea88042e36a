"""A server that answers 503 with Retry-After longer than the client will wait: the ledger keeps
the entry queued for at least that long (not its own shorter backoff), then delivers it once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.config import FhirServerSettings
from service.store import backoff_seconds, list_entries
from service.sync.accept import accept_records
from service.sync.runtime import SyncRuntime
from tests.durability_proxy import Fault, FaultProxy
from tests.integration.durability.conftest import StoreClock, migrated_sessions
from tests.integration.durability.helpers import (
    NAMESPACE,
    diary_payloads,
    expected_identifiers,
    records_of,
    server_identifiers,
    unique_patient,
)

pytestmark = pytest.mark.integration
RETRY_AFTER = 600  # seconds: ten times the ledger's first backoff


def test_the_servers_retry_after_outlasts_the_ledgers_backoff(
    fhir_server: str, sqlite_url: str, store_clock: StoreClock, proxies: list[FaultProxy]
) -> None:
    proxy = FaultProxy(
        fhir_server, lambda _seen: Fault.UNAVAILABLE_RETRY_AFTER, retry_after=str(RETRY_AFTER)
    ).start()
    proxies.append(proxy)
    sessions = migrated_sessions(sqlite_url)
    runtime = SyncRuntime(FhirServerSettings(base_url=proxy.base_url, max_tries=2), sessions)
    given = records_of(diary_payloads(unique_patient("retry-after"), 2))
    accept_records(sessions, NAMESPACE, given)

    assert {d.outcome.value for d in runtime.worker().drain()} == {"retry"}
    asked = len(proxy.requests())
    with sessions.begin() as session:
        queued = list_entries(session, "queued")
    assert len(queued) == 2
    for entry in queued:
        assert entry.last_error is not None and entry.last_error["status"] == 503
        assert entry.next_attempt_at >= store_clock.now() + timedelta(seconds=RETRY_AFTER - 5)

    store_clock.advance(backoff_seconds(1) * 4)  # our own backoff is long over; the server's not
    assert runtime.worker().drain() == []
    assert len(proxy.requests()) == asked  # the server was left alone

    proxy.plan = lambda _seen: Fault.PASS
    store_clock.advance(RETRY_AFTER)
    assert {d.outcome.value for d in runtime.worker().drain()} == {"created"}
    patient = given[0].patient.reference.removeprefix("Patient/")
    assert server_identifiers(fhir_server, patient) == expected_identifiers(given)

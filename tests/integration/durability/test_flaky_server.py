"""A flaky path to the FHIR server (503 with and without Retry-After, dropped connections before
and after the server committed, answers slower than our read timeout), chosen at random with a
fixed seed: after enough worker rounds the server holds exactly what we were given."""

from __future__ import annotations

from collections import Counter

import pytest

from mappings.records import DiaryEntry, Record
from service.config import FhirServerSettings
from service.schemas import RecordKind
from service.store import status_counts
from service.sync.accept import accept_records
from service.sync.pull import PullWindow, pull_records
from service.sync.runtime import SyncRuntime
from tests.durability_proxy import Fault, FaultProxy, flaky_plan
from tests.durability_proxy.proxy import is_bundle_post
from tests.integration.durability.conftest import StoreClock, migrated_sessions
from tests.integration.durability.helpers import (
    NAMESPACE,
    diary_payloads,
    expected_identifiers,
    infusion_payloads,
    ledger,
    records_of,
    server_identifiers,
    unique_patient,
)

pytestmark = pytest.mark.integration

SEED = 20261127
FAULTS = (
    Fault.UNAVAILABLE,
    Fault.UNAVAILABLE_RETRY_AFTER,
    Fault.DROP_BEFORE,
    Fault.DROP_AFTER,
    Fault.DELAY,
)
MAX_ROUNDS = 25


def by_time(records: list[Record]) -> list[Record]:
    return sorted(records, key=lambda r: r.recorded_at if isinstance(r, DiaryEntry) else r.start)


def test_a_flaky_server_ends_up_with_exactly_the_records_we_were_given(
    fhir_server: str,
    sqlite_url: str,
    store_clock: StoreClock,
    proxies: list[FaultProxy],
) -> None:
    proxy = FaultProxy(fhir_server, flaky_plan(SEED, 0.35, FAULTS), delay_seconds=0.9).start()
    proxies.append(proxy)
    settings = FhirServerSettings(
        base_url=proxy.base_url,
        chunk_size=24,
        max_tries=3,
        read_timeout=0.6,  # a DELAY (0.9 s) is a timeout after the server committed
        deadline_seconds=20.0,
        # A 35 % fault rate trips a circuit breaker for real-time cool-downs; this test is about
        # retrying through flakiness (test_hung_server covers the breaker).
        breaker_failures=0,
    )
    sessions = migrated_sessions(sqlite_url)
    runtime = SyncRuntime(settings, sessions)
    patient = unique_patient("flaky")
    diaries, infusions = diary_payloads(patient, 30), infusion_payloads(patient, 4)
    given = records_of(diaries, infusions)
    accept_records(sessions, NAMESPACE, given)

    rounds = 0
    outcomes: Counter[str] = Counter()
    while any(status == "queued" for status, _ in ledger(sessions).values()):
        rounds += 1
        assert rounds <= MAX_ROUNDS, f"not drained after {MAX_ROUNDS} rounds: {outcomes}"
        outcomes.update(d.outcome.value for d in runtime.worker().drain())
        store_clock.advance(3600)  # every backoff has passed by the next round

    with sessions.begin() as session:
        assert status_counts(session).counts == {"sent": len(given)}
    assert server_identifiers(fhir_server, patient) == expected_identifiers(given)

    # The run was really flaky: every fault hit, and some hit writes the server had committed.
    applied = Counter(seen.fault for seen in proxy.requests())
    assert set(FAULTS) <= set(applied), applied
    committed_unanswered = [
        s
        for s in proxy.requests("POST")
        if is_bundle_post(s) and s.fault in (Fault.DROP_AFTER, Fault.DELAY) and s.status == 200
    ]
    assert committed_unanswered
    assert outcomes["retry"] > 0  # the client gave up at least once: the ledger retried

    # Pulled back (through the same flaky path), the records equal the input.
    diaries_back = pull_records(
        runtime.client, f"Patient/{patient}", RecordKind.DIARY_ENTRY, PullWindow()
    )
    infusions_back = pull_records(
        runtime.client, f"Patient/{patient}", RecordKind.INFUSION, PullWindow()
    )
    assert diaries_back.unreadable == infusions_back.unreadable == 0
    assert diaries_back.records == by_time(records_of(diaries))
    assert infusions_back.records == by_time(records_of((), infusions))

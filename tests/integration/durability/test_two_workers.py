"""Two `diarybridge worker` processes on one PostgreSQL queue: SKIP LOCKED claims hand each entry
to exactly one of them, so every resource is written once, and each worker wrote a share."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import pytest

from service.sync.accept import accept_records
from tests.durability_proxy import Fault, FaultProxy, Plan, Seen
from tests.durability_proxy.proxy import is_bundle_post
from tests.integration.durability.conftest import migrated_sessions
from tests.integration.durability.helpers import (
    COUNTED_TYPES,
    NAMESPACE,
    diary_payloads,
    expected_identifiers,
    infusion_payloads,
    ledger,
    records_of,
    server_identifiers,
    start_worker,
    unique_patient,
    worker_env,
)

pytestmark = pytest.mark.integration

ENTRIES = 48
CHUNK = 6


def meet_then_slow(barrier: threading.Barrier) -> Plan:
    """Hold a worker's first transaction until the other's arrives too (both hold claims at
    once), then slow every transaction a little so their batches interleave."""
    first = True

    def plan(seen: Seen) -> Fault:
        nonlocal first
        if not is_bundle_post(seen):
            return Fault.PASS
        if first:
            first = False
            barrier.wait()
        return Fault.DELAY

    return plan


def written(proxy: FaultProxy) -> list[str]:
    """Every resource URL this worker PUT in a transaction the server accepted."""
    return [
        url
        for seen in proxy.requests("POST")
        if is_bundle_post(seen) and seen.status == 200
        for url in seen.put_urls()
    ]


def test_two_worker_processes_on_postgresql_push_each_entry_exactly_once(
    fhir_server: str, postgres_url: str, tmp_path: Path, proxies: list[FaultProxy]
) -> None:
    barrier = threading.Barrier(2, timeout=60)
    for _ in range(2):
        proxies.append(FaultProxy(fhir_server, meet_then_slow(barrier), delay_seconds=0.05).start())
    sessions = migrated_sessions(postgres_url)
    patient = unique_patient("two")
    given = records_of(diary_payloads(patient, ENTRIES - 4), infusion_payloads(patient, 4))
    accept_records(sessions, NAMESPACE, given)

    workers = [
        start_worker(
            worker_env(
                postgres_url,
                proxy.base_url,
                DIARYBRIDGE_FHIR_CHUNK_SIZE=str(CHUNK),
                DIARYBRIDGE_WORKER_BATCH=str(CHUNK),
                DIARYBRIDGE_LEASE_SECONDS="120",  # no lease runs out: a second claim is a bug
            ),
            tmp_path / f"worker{n}.log",
            once=True,
        )
        for n, proxy in enumerate(proxies)
    ]
    for n, worker in enumerate(workers):
        assert worker.wait(90) == 0, (tmp_path / f"worker{n}.log").read_text()[-3000:]

    state = ledger(sessions)
    assert len(state) == ENTRIES
    assert set(state.values()) == {("sent", 1)}  # each entry claimed once, by one worker

    shares = [written(proxy) for proxy in proxies]
    assert all(shares), [len(s) for s in shares]  # both workers delivered a part
    every_write = Counter(shares[0] + shares[1])
    counted = Counter({url: n for url, n in every_write.items() if url.startswith(COUNTED_TYPES)})
    assert max(every_write.values()) == 1  # no resource was written by both, or twice
    expected = expected_identifiers(given)
    assert len(counted) == len(expected)
    assert server_identifiers(fhir_server, patient) == expected

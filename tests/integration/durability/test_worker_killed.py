"""A `diarybridge worker` process killed with SIGKILL in the middle of a batch, after the server
committed some of its transactions but before the ledger heard of them, then started again:
once drained, nothing is lost and nothing is doubled (SQLite file ledger)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import pytest

from service.sync.accept import accept_records
from tests.durability_proxy import Fault, FaultProxy, Plan, Seen
from tests.durability_proxy.proxy import is_bundle_post
from tests.integration.durability.conftest import migrated_sessions
from tests.integration.durability.helpers import (
    NAMESPACE,
    diary_payloads,
    expected_identifiers,
    ledger,
    records_of,
    server_identifiers,
    start_worker,
    stop_worker,
    unique_patient,
    wait_until,
    worker_env,
)

pytestmark = pytest.mark.integration

ENTRIES = 24
CHUNK = 8  # entries claimed per batch; a diary entry (> 8 resources) is one transaction alone
HELD_TRANSACTION = 11  # the third of the second batch: two before it committed and answered
LEASE_SECONDS = 3


def hold_transaction(number: int) -> Plan:
    """A plan that holds the response to the n-th transaction (the server has committed it)."""
    seen = 0
    lock = threading.Lock()

    def plan(request: Seen) -> Fault:
        nonlocal seen
        # Transactions only: a system caller's new ids are first looked up in a batch.
        if not is_bundle_post(request) or request.json().get("type") != "transaction":
            return Fault.PASS
        with lock:
            seen += 1
            return Fault.HOLD if seen == number else Fault.PASS

    return plan


def test_a_worker_killed_mid_batch_and_restarted_loses_and_doubles_nothing(
    fhir_server: str, sqlite_url: str, tmp_path: Path, proxies: list[FaultProxy]
) -> None:
    proxy = FaultProxy(fhir_server, hold_transaction(HELD_TRANSACTION)).start()
    proxies.append(proxy)
    sessions = migrated_sessions(sqlite_url)
    patient = unique_patient("killed")
    given = records_of(diary_payloads(patient, ENTRIES))
    accept_records(sessions, NAMESPACE, given)
    expected = expected_identifiers(given)
    env = worker_env(
        sqlite_url,
        proxy.base_url,
        DIARYBRIDGE_FHIR_CHUNK_SIZE=str(CHUNK),
        DIARYBRIDGE_WORKER_BATCH=str(CHUNK),
        DIARYBRIDGE_LEASE_SECONDS=str(LEASE_SECONDS),
    )
    log = tmp_path / "worker.log"

    first = start_worker(env, log)
    try:
        if not proxy.held.wait(60):
            raise AssertionError(
                f"the worker never reached transaction {HELD_TRANSACTION}:\n"
                + log.read_text(errors="replace")[-3000:]
            )
        first.send_signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
    finally:
        stop_worker(first)

    # The kill landed mid-batch: the server is ahead of the ledger.
    state = ledger(sessions)
    assert sorted(status for status, _ in state.values()).count("sent") == CHUNK
    on_server = server_identifiers(fhir_server, patient)
    per_entry = len(expected) // ENTRIES
    assert len(on_server) == HELD_TRANSACTION * per_entry  # 8 recorded + 3 unrecorded entries
    assert max(on_server.values()) == 1 and set(on_server) < set(expected)

    proxy.plan = lambda _seen: Fault.PASS
    proxy.release()
    second = start_worker(env, log)
    try:
        wait_until(
            lambda: all(status == "sent" for status, _ in ledger(sessions).values()),
            60,
            "the restarted worker to drain the ledger",
        )
    finally:
        assert stop_worker(second) == 0

    state = ledger(sessions)
    assert {status for status, _ in state.values()} == {"sent"} and len(state) == ENTRIES
    attempts = sorted(attempt for _, attempt in state.values())
    # The killed batch was claimed again once its lease ran out; every other entry once.
    assert attempts == [1] * (ENTRIES - CHUNK) + [2] * CHUNK
    assert server_identifiers(fhir_server, patient) == expected

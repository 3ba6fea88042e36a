"""A FHIR server that accepts connections and never answers does not stall the API: `serve`
answers every synchronous push within its time budget (records `queued`, none lost), the
circuit breaker then refuses the server at once, and /healthz and /readyz answer meanwhile."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from service.app import create_app
from service.config import FhirServerSettings, Settings
from service.store import claim_batch
from service.sync.accept import accept_records
from service.sync.runtime import SyncRuntime
from tests.conftest import KEYS, make_env
from tests.durability_proxy.hanging import HangingServer
from tests.fhir_server import free_port
from tests.integration.durability.conftest import migrated_sessions
from tests.integration.durability.helpers import (
    NAMESPACE,
    REPO,
    diary_payloads,
    ledger,
    records_of,
    unique_patient,
    wait_until,
    worker_env,
)

pytestmark = pytest.mark.integration

BUDGET = 2.0  # DIARYBRIDGE_SYNC_PUSH_BUDGET_SECONDS of the served app
MARGIN = 5.0  # start-up of a request, the database, a loaded shared machine
CLIENTS = 8  # twice serve's 4 threads: half of them wait for a thread
BATCH = {"X-API-Key": KEYS["batch"]["key"]}


@pytest.fixture
def served_against_a_hung_server(
    sqlite_url: str, tmp_path: Path
) -> Iterator[tuple[str, HangingServer]]:
    """`diarybridge serve` (4 threads, in-process worker) whose FHIR server hangs."""
    log = tmp_path / "serve.log"
    with HangingServer(lifetime=120) as hung:
        port = free_port()
        env = worker_env(
            sqlite_url,
            hung.base_url,
            DIARYBRIDGE_API_KEYS=json.dumps(list(KEYS.values())),
            DIARYBRIDGE_SYNC_PUSH_BUDGET_SECONDS=str(BUDGET),
            # One web process, so its worker thread and /readyz share one circuit breaker
            # (with more, delivery runs in a process of its own and each has its breaker).
            DIARYBRIDGE_WORKERS="1",
        )
        command = [sys.executable, "-m", "service.cli", "serve", "--port", str(port)]
        with log.open("ab") as out:
            serve = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                assert serve.poll() is None, log.read_text(errors="replace")[-3000:]
                try:
                    if requests.get(f"{base}/healthz", timeout=2).ok:
                        break
                except requests.RequestException:
                    pass
                assert time.monotonic() < deadline, "serve did not start in 30 s"
                time.sleep(0.2)
            yield base, hung
        finally:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(15)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait(5)


def timed(call: Any) -> tuple[float, requests.Response | Exception]:
    """(seconds taken, the response or the exception raised)."""
    started = time.monotonic()
    try:
        result: requests.Response | Exception = call()
    except requests.RequestException as exc:
        result = exc
    return time.monotonic() - started, result


def test_a_hung_fhir_server_does_not_stall_the_api(
    served_against_a_hung_server: tuple[str, HangingServer], sqlite_url: str
) -> None:
    base, hung = served_against_a_hung_server
    patient = unique_patient("hung")
    payloads = diary_payloads(patient, CLIENTS * 2)
    limit = BUDGET + MARGIN
    answers: list[tuple[float, requests.Response | Exception]] = [(0.0, Exception())] * CLIENTS

    def sync(n: int) -> None:
        body = payloads[2 * n : 2 * n + 2]
        answers[n] = timed(
            lambda: requests.post(
                f"{base}/sync/diary-entries", json=body, headers=BATCH, timeout=limit + 10
            )
        )

    threads = [threading.Thread(target=sync, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    health = []
    for _ in range(4):
        time.sleep(0.3)
        health.append(timed(lambda: requests.get(f"{base}/healthz", timeout=limit + 10)))
    for thread in threads:
        thread.join(limit + 20)

    for seconds, response in answers + health:
        assert isinstance(response, requests.Response), response
        assert response.status_code == 200, response.text
        assert seconds <= limit, f"{seconds:.1f} s > {limit} s"
    outcomes = [r["outcome"] for _, a in answers for r in a.json()["results"]]  # type: ignore[union-attr]
    assert outcomes == ["queued"] * len(payloads)

    # The circuit is open now: the server is not called, and a push answers `queued` at once.
    calls = hung.accepted
    seconds, response = timed(
        lambda: requests.post(
            f"{base}/sync/diary-entries", json=payloads[:1], headers=BATCH, timeout=limit
        )
    )
    assert isinstance(response, requests.Response)
    assert response.json()["results"][0]["outcome"] == "queued"
    assert seconds < 1.5
    seconds, ready = timed(lambda: requests.get(f"{base}/readyz", timeout=limit))
    assert isinstance(ready, requests.Response) and seconds < 1.5
    assert ready.status_code == 200 and ready.json()["checks"]["fhir_server"] == "failed"
    assert hung.accepted == calls

    # Nothing lost: every record is in the outbox, queued for the worker.
    state = ledger(migrated_sessions(sqlite_url))
    assert sorted(state) == sorted(p["entry_id"] for p in payloads)
    assert {status for status, _ in state.values()} == {"queued"}


def test_records_the_open_circuit_kept_from_the_server_keep_their_attempts(
    sqlite_url: str,
) -> None:
    sessions = migrated_sessions(sqlite_url)
    given = records_of(diary_payloads(unique_patient("open-circuit"), 3))
    accept_records(sessions, NAMESPACE, given)
    with HangingServer(lifetime=30) as hung:
        runtime = SyncRuntime(FhirServerSettings(base_url=hung.base_url), sessions)
        breaker = runtime.client.breaker
        assert breaker is not None
        for _ in range(breaker.failures):
            breaker.failed()
        delivered = runtime.worker().drain()
        assert hung.accepted == 0  # refused before a connection was made
    assert [d.attempted for d in delivered] == [False] * 3
    # Back in the queue as they were: no attempt used up, due at once, nobody's claim.
    assert sorted(ledger(sessions).values()) == [("queued", 0)] * 3
    with sessions.begin() as session:
        assert len(claim_batch(session, "next", 10, 30)) == 3


def test_readyz_never_waits_on_a_hung_fhir_server(tmp_path: Path) -> None:
    with HangingServer(lifetime=30) as hung:
        env = make_env(
            tmp_path, DIARYBRIDGE_FHIR_BASE_URL=hung.base_url, DIARYBRIDGE_READINESS_TIMEOUT="3"
        )
        client = create_app(Settings.from_env(env)).test_client()
        for _ in range(3):
            seconds, response = timed(lambda: client.get("/readyz"))
            assert seconds < 1.0
            assert response.status_code == 200  # type: ignore[union-attr]
            assert response.json["checks"]["fhir_server"] == "unknown"  # type: ignore[union-attr]
        # The background probe gives up after its own timeout and says so; still ready.
        wait_until(
            lambda: client.get("/readyz").json["checks"]["fhir_server"] == "failed",  # type: ignore[index]
            10,
            "the background probe to time out",
        )
        assert hung.accepted == 1  # one probe at a time, not one per /readyz

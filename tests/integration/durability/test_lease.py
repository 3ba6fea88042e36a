"""Leases are short and renewed while a batch runs: a slow batch keeps its claims, and the claims
of a `diarybridge serve` killed mid-batch are back within one (default) lease, none lost."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.config import FhirServerSettings, Settings
from service.store import claim_batch
from service.store.models import LedgerEntry
from service.sync.accept import accept_records
from service.sync.runtime import SyncRuntime
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

ENTRIES = 10


def test_a_batch_slower_than_its_lease_keeps_its_claims(sqlite_url: str) -> None:
    lease = 1.5
    sessions = migrated_sessions(sqlite_url)
    accept_records(sessions, NAMESPACE, records_of(diary_payloads(unique_patient("beat"), 4)))
    with HangingServer(lifetime=30) as hung:
        # The push hangs for 3 leases; without renewal another worker takes the batch meanwhile.
        fhir = FhirServerSettings(base_url=hung.base_url, read_timeout=4.5, max_tries=1)
        worker = SyncRuntime(fhir, sessions, lease_seconds=lease).worker(name="slow")
        done: list[int] = []
        thread = threading.Thread(target=lambda: done.append(len(worker.run_once())))
        thread.start()
        try:
            wait_until(lambda: hung.accepted >= 1, 10, "the slow batch to reach the server")
            stolen = []
            deadline = time.monotonic() + 3 * lease
            while time.monotonic() < deadline and not stolen:
                with sessions.begin() as session:
                    stolen = claim_batch(session, "thief", 10, lease)
                time.sleep(0.2)
        finally:
            thread.join(30)
    assert stolen == []
    assert done == [4]
    # The slow worker reported every entry itself: one attempt each, all still queued.
    assert sorted(ledger(sessions).values()) == [("queued", 1)] * 4


def test_serve_killed_mid_batch_gives_its_claims_back_within_one_lease(
    sqlite_url: str, tmp_path: Path
) -> None:
    bound = Settings().lease_seconds  # the default: what an operator gets without tuning
    assert bound <= 60
    sessions = migrated_sessions(sqlite_url)
    given = records_of(diary_payloads(unique_patient("serve-killed"), ENTRIES))
    accept_records(sessions, NAMESPACE, given)
    log = tmp_path / "serve.log"
    with HangingServer(lifetime=bound + 60) as hung:
        env = worker_env(sqlite_url, hung.base_url)
        command = [sys.executable, "-m", "service.cli", "serve", "--port", str(free_port())]
        with log.open("ab") as out:
            serve = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            wait_until(lambda: in_flight(sessions) == ENTRIES, 60, "serve's worker to claim")
            wait_until(lambda: hung.accepted >= 1, 30, "serve's worker to call the server")
        except AssertionError:
            serve.kill()
            raise AssertionError(log.read_text(errors="replace")[-3000:]) from None
        finally:
            serve.send_signal(signal.SIGKILL)
            serve.wait(10)
        killed_at = time.monotonic()
        assert serve.returncode == -signal.SIGKILL

    back: list[str] = []

    def claimed_again() -> bool:
        with sessions.begin() as session:
            back.extend(e.source_id for e in claim_batch(session, "successor", 100, bound))
        return len(back) == ENTRIES

    wait_until(claimed_again, bound + 10, "the killed process's claims to come back")
    assert time.monotonic() - killed_at <= bound + 10
    assert sorted(back) == sorted(getattr(r, "entry_id") for r in given)  # noqa: B009


def in_flight(sessions: sessionmaker[Session]) -> int:
    """How many ledger entries are claimed right now."""
    with sessions.begin() as session:
        return len(
            session.scalars(
                select(LedgerEntry.id).where(LedgerEntry.claim_token.is_not(None))
            ).all()
        )

"""Export jobs in the store and the runner that works them: claim, heartbeat, resume, cancel."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from export_fakes import BASE
from export_synthetic import resources
from sqlalchemy.orm import Session, sessionmaker

from service.exports import ExportRunner, export_request
from service.fhir_client import NO_RETRY, FhirClient
from service.store import exports as jobs
from service.store import make_engine, make_session_factory, upgrade
from service.store.exports import ExportJobLost

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
    upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


def new_job(sessions: sessionmaker[Session], body: dict[str, Any] | None = None, **kw: Any) -> str:
    job_id = str(uuid.uuid4())
    with sessions.begin() as session:
        jobs.create_export_job(
            session,
            job_id=job_id,
            client_id="registry-export",
            patient=None,
            request=export_request(body or {}).to_json(),
            request_url="https://diarybridge.test/exports",
            **kw,
        )
    return job_id


def test_a_claimed_job_is_not_claimed_again_while_its_heartbeat_is_fresh(
    sessions: sessionmaker[Session],
) -> None:
    job_id = new_job(sessions, now=T0)
    with sessions.begin() as s:
        claimed = jobs.claim_export_job(s, "runner-a", stale_after=60, now=T0)
    assert claimed is not None and claimed.id == job_id and claimed.attempts == 1
    with sessions.begin() as s:
        assert (
            jobs.claim_export_job(s, "runner-b", stale_after=60, now=T0 + timedelta(seconds=30))
            is None
        )
        jobs.heartbeat_export_job(
            s, job_id, "runner-a", "Observation: 1000", now=T0 + timedelta(seconds=50)
        )
    with sessions.begin() as s:
        assert (
            jobs.claim_export_job(s, "runner-b", stale_after=60, now=T0 + timedelta(seconds=100))
            is None
        )
        again = jobs.claim_export_job(
            s, "runner-b", stale_after=60, now=T0 + timedelta(seconds=111)
        )
    assert again is not None and again.runner_id == "runner-b" and again.attempts == 2
    with sessions.begin() as s, pytest.raises(ExportJobLost):
        jobs.heartbeat_export_job(s, job_id, "runner-a", None)


def test_a_job_interrupted_too_often_is_failed_not_retried(
    sessions: sessionmaker[Session],
) -> None:
    job_id = new_job(sessions, now=T0)
    now = T0
    for attempt in range(3):
        with sessions.begin() as s:
            assert jobs.claim_export_job(s, f"r{attempt}", stale_after=10, now=now) is not None
        now += timedelta(seconds=11)
    with sessions.begin() as s:
        assert jobs.claim_export_job(s, "r4", stale_after=10, now=now) is None
        job = jobs.get_export_job(s, job_id)
    assert job is not None and job.status == "failed" and "interrupted 3 times" in (job.error or "")


def test_complete_after_cancel_keeps_the_cancel(sessions: sessionmaker[Session]) -> None:
    job_id = new_job(sessions)
    with sessions.begin() as s:
        jobs.claim_export_job(s, "r", stale_after=60)
    with sessions.begin() as s:
        assert jobs.cancel_export_job(s, job_id)
    with sessions.begin() as s:
        assert jobs.complete_export_job(s, job_id, "r", {"output": []}) == "cancelled"
        assert not jobs.cancel_export_job(s, job_id)


def capability() -> dict[str, Any]:
    return {"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1", "rest": []}


def serve(rsps: responses.RequestsMock, data: list[dict[str, Any]]) -> None:
    rsps.get(f"{BASE}/metadata", json=capability())
    for t in ("Observation", "MedicationAdministration", "AdverseEvent"):
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r} for r in data if r["resourceType"] == t],
        }
        rsps.get(f"{BASE}/{t}", json=bundle)


def runner(sessions: sessionmaker[Session], tmp_path: Path, **kw: Any) -> ExportRunner:
    return ExportRunner(
        sessions, lambda: FhirClient(BASE, retry=NO_RETRY), tmp_path / "exports", **kw
    )


def test_the_runner_completes_a_queued_job_with_a_manifest_and_files(
    sessions: sessionmaker[Session], rsps: responses.RequestsMock, tmp_path: Path
) -> None:
    data = resources(30)
    serve(rsps, data)
    job_id = new_job(sessions)
    work = runner(sessions, tmp_path)
    work.wake()
    work.join(30)
    with sessions.begin() as s:
        job = jobs.get_export_job(s, job_id)
    assert job is not None and job.status == "completed", job and job.error
    assert job.manifest is not None
    by_type = {o["type"]: o for o in job.manifest["output"]}
    assert by_type["Observation"]["count"] == sum(r["resourceType"] == "Observation" for r in data)
    assert by_type["Observation"]["url"] == (
        f"https://diarybridge.test/exports/{job_id}/files/Observation.ndjson"
    )
    assert (work.job_dir(job_id) / "Observation.ndjson").is_file()


def test_a_job_left_running_by_a_dead_process_is_resumed_at_start(
    sessions: sessionmaker[Session], rsps: responses.RequestsMock, tmp_path: Path
) -> None:
    serve(rsps, resources(10))
    job_id = new_job(sessions)
    long_ago = datetime.now(UTC) - timedelta(minutes=10)
    with sessions.begin() as s:
        jobs.claim_export_job(s, "dead-runner", stale_after=60, now=long_ago)
    # What the dead run left behind: a half-written part file, which must not leak into output.
    leftover = tmp_path / "exports" / job_id
    leftover.mkdir(parents=True)
    (leftover / "Observation.ndjson.part").write_text('{"half":')
    work = runner(sessions, tmp_path, stale_after=60)
    assert work.resume_open_jobs() == 1
    work.join(30)
    with sessions.begin() as s:
        job = jobs.get_export_job(s, job_id)
    assert job is not None and job.status == "completed" and job.attempts == 2
    assert not list(leftover.glob("*.part"))
    for line in (leftover / "Observation.ndjson").read_text().splitlines():
        assert json.loads(line)["resourceType"] == "Observation"


def test_a_failing_server_fails_the_job_with_a_safe_message(
    sessions: sessionmaker[Session], rsps: responses.RequestsMock, tmp_path: Path
) -> None:
    rsps.get(f"{BASE}/metadata", json=capability())
    rsps.get(f"{BASE}/Observation", status=500)
    job_id = new_job(sessions, {"types": ["Observation"]})
    work = runner(sessions, tmp_path)
    work.wake()
    work.join(30)
    with sessions.begin() as s:
        job = jobs.get_export_job(s, job_id)
    assert job is not None and job.status == "failed"
    assert job.error is not None and job.error.startswith("ServerError")
    assert not work.job_dir(job_id).exists()


def test_a_cancel_while_running_stops_the_job_and_removes_its_files(
    sessions: sessionmaker[Session], rsps: responses.RequestsMock, tmp_path: Path
) -> None:
    data = [r for r in resources(200) if r["resourceType"] == "Observation"]
    assert len(data) > 1000  # the runner looks for a cancel every 1000 resources
    job_id = new_job(sessions, {"types": ["Observation"]})
    rsps.get(f"{BASE}/metadata", json=capability())

    def page(_: Any) -> tuple[int, dict[str, str], str]:
        with sessions.begin() as s:
            jobs.cancel_export_job(s, job_id)  # DELETE /exports/{id} arrives meanwhile
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r} for r in data],
        }
        return 200, {}, json.dumps(bundle)

    rsps.add_callback(responses.GET, f"{BASE}/Observation", callback=page)
    work = runner(sessions, tmp_path, heartbeat_every=0)
    work.wake()
    work.join(30)
    with sessions.begin() as s:
        job = jobs.get_export_job(s, job_id)
    assert job is not None and job.status == "cancelled" and job.manifest is None
    assert not work.job_dir(job_id).exists()

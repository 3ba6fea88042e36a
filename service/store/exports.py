"""Export jobs: create, claim under a heartbeat, report progress, finish; resumable after a crash.

A runner claims a job by writing its runner id and a heartbeat. A job whose heartbeat is older
than `stale_after` has lost its runner (the process died) and can be claimed again, which is
how jobs survive a restart; after `max_attempts` claims it is failed instead of retried forever.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from service.store.clock import utcnow
from service.store.errors import StoreError
from service.store.models import ExportJob, ExportJobStatus

DEFAULT_MAX_ATTEMPTS = 3
FINAL = frozenset({ExportJobStatus.COMPLETED, ExportJobStatus.FAILED, ExportJobStatus.CANCELLED})


class ExportJobLost(StoreError):
    """A runner reports on a job it no longer holds (it was re-claimed after going silent)."""

    def __init__(self, job_id: str, runner_id: str) -> None:
        super().__init__(f"export job {job_id} is no longer held by runner {runner_id}")
        self.job_id = job_id


@dataclass(frozen=True)
class ExportJobView:
    """A read-only copy of one export job."""

    id: str
    client_id: str
    patient: str | None
    request: dict[str, Any]
    request_url: str
    status: str
    progress: str | None
    manifest: dict[str, Any] | None
    error: str | None
    attempts: int
    runner_id: str | None
    heartbeat_at: datetime | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


def _view(row: ExportJob) -> ExportJobView:
    return ExportJobView(
        id=row.id,
        client_id=row.client_id,
        patient=row.patient,
        request=json.loads(row.request_json),
        request_url=row.request_url,
        status=row.status,
        progress=row.progress,
        manifest=json.loads(row.manifest_json) if row.manifest_json else None,
        error=row.error,
        attempts=row.attempts,
        runner_id=row.runner_id,
        heartbeat_at=row.heartbeat_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
    )


def create_export_job(
    session: Session,
    *,
    job_id: str,
    client_id: str,
    patient: str | None,
    request: dict[str, Any],
    request_url: str,
    now: datetime | None = None,
) -> ExportJobView:
    """Queue a new export job."""
    now = now or utcnow()
    row = ExportJob(
        id=job_id,
        client_id=client_id,
        patient=patient,
        request_json=json.dumps(request, sort_keys=True),
        request_url=request_url,
        status=ExportJobStatus.QUEUED.value,
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return _view(row)


def get_export_job(session: Session, job_id: str) -> ExportJobView | None:
    """One job, or None."""
    row = session.get(ExportJob, job_id)
    return _view(row) if row is not None else None


def _claimable(now: datetime, stale_after: float) -> Any:
    stale = now - timedelta(seconds=stale_after)
    return or_(
        ExportJob.status == ExportJobStatus.QUEUED.value,
        (ExportJob.status == ExportJobStatus.RUNNING.value) & (ExportJob.heartbeat_at < stale),
    )


def claim_export_job(
    session: Session,
    runner_id: str,
    *,
    stale_after: float,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    now: datetime | None = None,
) -> ExportJobView | None:
    """Claim the oldest queued job, or a running one whose runner went silent; None if none.

    A job already claimed `max_attempts` times is marked failed rather than tried again.
    """
    now = now or utcnow()
    while True:
        row = session.scalars(
            select(ExportJob)
            .where(_claimable(now, stale_after))
            .order_by(ExportJob.created_at, ExportJob.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if row is None:
            return None
        if row.attempts >= max_attempts:
            row.status = ExportJobStatus.FAILED.value
            row.error = f"interrupted {row.attempts} times; not resumed again"
            row.runner_id = None
            row.updated_at = row.finished_at = now
            session.flush()
            continue
        row.status = ExportJobStatus.RUNNING.value
        row.runner_id = runner_id
        row.heartbeat_at = now
        row.attempts += 1
        row.updated_at = now
        session.flush()
        return _view(row)


def _held(session: Session, job_id: str, runner_id: str) -> ExportJob:
    row = session.get(ExportJob, job_id, with_for_update=True)
    if row is None or row.runner_id != runner_id:
        raise ExportJobLost(job_id, runner_id)
    return row


def heartbeat_export_job(
    session: Session,
    job_id: str,
    runner_id: str,
    progress: str | None,
    *,
    now: datetime | None = None,
) -> str:
    """Record progress and that the runner lives; returns the status (a cancel shows here)."""
    row = _held(session, job_id, runner_id)
    if row.status == ExportJobStatus.RUNNING.value:
        now = now or utcnow()
        row.heartbeat_at = row.updated_at = now
        row.progress = progress[:400] if progress else None
        session.flush()
    return row.status


def complete_export_job(
    session: Session,
    job_id: str,
    runner_id: str,
    manifest: dict[str, Any],
    *,
    now: datetime | None = None,
) -> str:
    """Store the manifest and mark the job completed (unless it was cancelled meanwhile)."""
    row = _held(session, job_id, runner_id)
    if row.status != ExportJobStatus.RUNNING.value:
        return row.status
    now = now or utcnow()
    row.status = ExportJobStatus.COMPLETED.value
    row.manifest_json = json.dumps(manifest)
    row.error = None
    row.runner_id = None
    row.updated_at = row.finished_at = now
    session.flush()
    return row.status


def fail_export_job(
    session: Session, job_id: str, runner_id: str, error: str, *, now: datetime | None = None
) -> str:
    """Mark the job failed with a safe message (no values)."""
    row = _held(session, job_id, runner_id)
    if row.status != ExportJobStatus.RUNNING.value:
        return row.status
    now = now or utcnow()
    row.status = ExportJobStatus.FAILED.value
    row.error = error[:2000]
    row.runner_id = None
    row.updated_at = row.finished_at = now
    session.flush()
    return row.status


def release_export_job(
    session: Session, job_id: str, runner_id: str, *, now: datetime | None = None
) -> None:
    """Hand a running job back to the queue (the runner is stopping) so it resumes later."""
    row = _held(session, job_id, runner_id)
    if row.status == ExportJobStatus.RUNNING.value:
        row.status = ExportJobStatus.QUEUED.value
        row.runner_id = None
        row.updated_at = now or utcnow()
        session.flush()


def cancel_export_job(session: Session, job_id: str, *, now: datetime | None = None) -> bool:
    """Cancel a queued or running job, or withdraw a finished one; False if already cancelled."""
    row = session.get(ExportJob, job_id, with_for_update=True)
    if row is None or row.status == ExportJobStatus.CANCELLED.value:
        return False
    now = now or utcnow()
    row.status = ExportJobStatus.CANCELLED.value
    row.updated_at = now
    row.finished_at = row.finished_at or now
    session.flush()
    return True


def open_export_jobs(
    session: Session, *, stale_after: float | None = None, now: datetime | None = None
) -> int:
    """How many jobs are queued or running (with `stale_after`: only those claimable now)."""
    if stale_after is None:
        where: Any = ExportJob.status.in_(
            [ExportJobStatus.QUEUED.value, ExportJobStatus.RUNNING.value]
        )
    else:
        where = _claimable(now or utcnow(), stale_after)
    return int(session.scalar(select(func.count()).select_from(ExportJob).where(where)) or 0)

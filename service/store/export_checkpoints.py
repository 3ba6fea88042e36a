"""Incremental CLI exports: each finished run of a named job is kept as an export_job row.

A nightly `diarybridge export --job-name nightly` starts where the last completed run of
"nightly" ended (its manifest's transactionTime), so it exports only what changed since.
The rows reuse export_job (client_id "cli:<name>", status completed): no table of its own.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store.clock import utcnow
from service.store.models import ExportJob, ExportJobStatus

CLI_PREFIX = "cli:"


def last_transaction_time(session: Session, job_name: str) -> str | None:
    """The transactionTime of the named job's latest completed run, or None (first run)."""
    manifest_json = session.scalars(
        select(ExportJob.manifest_json)
        .where(
            ExportJob.client_id == CLI_PREFIX + job_name,
            ExportJob.status == ExportJobStatus.COMPLETED.value,
        )
        .order_by(ExportJob.finished_at.desc(), ExportJob.created_at.desc())
        .limit(1)
    ).first()
    if not manifest_json:
        return None
    value = json.loads(manifest_json).get("transactionTime")
    return value if isinstance(value, str) else None


def record_run(
    session: Session,
    job_name: str,
    request: dict[str, Any],
    manifest: dict[str, Any],
    *,
    now: datetime | None = None,
) -> str:
    """Keep one completed run of the named job; returns its row id."""
    now = now or utcnow()
    row = ExportJob(
        id=str(uuid.uuid4()),
        client_id=CLI_PREFIX + job_name,
        patient=None,
        request_json=json.dumps(request, sort_keys=True),
        request_url=f"cli:{job_name}",
        status=ExportJobStatus.COMPLETED.value,
        manifest_json=json.dumps(manifest),
        attempts=1,
        created_at=now,
        updated_at=now,
        finished_at=now,
    )
    session.add(row)
    session.flush()
    return row.id

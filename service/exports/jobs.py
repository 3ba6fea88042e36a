"""Export jobs for a caller: start, poll, cancel, download; the API's doors all call these.

A caller sees its own jobs only (same client id and patient binding); any other job, an unknown
one and a withdrawn one are alike "no such export job", so the answer reveals nothing.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.exports.request import (
    RECORD_SOURCE_TYPES,
    ExportFormat,
    ExportRequest,
    ExportRequestError,
)
from service.exports.run import media_type
from service.exports.runner import ExportRunner
from service.security import Principal
from service.store import exports as store_jobs
from service.store.exports import ExportJobView
from service.store.models import ExportJobStatus
from service.sync.target import make_client

__all__ = [
    "ExportFile",
    "ExportFilesGone",
    "ExportJobStatus",
    "ExportJobView",
    "NoSuchExportFile",
    "NoSuchExportJob",
    "cancel_job",
    "default_exports_dir",
    "job_file",
    "job_for_caller",
    "make_runner",
    "queue_job",
]


class NoSuchExportJob(LookupError):
    """Not the caller's job (or unknown, or withdrawn): 404, whichever it is."""


class NoSuchExportFile(LookupError):
    """The job is the caller's, but it lists no such file (or is not complete)."""


class ExportFilesGone(LookupError):
    """The job listed the file, but its files are no longer kept."""


@dataclass(frozen=True)
class ExportFile:
    """One output file of a completed job, and what to audit about reading it."""

    path: Path
    media_type: str
    resource_type: str
    count: int
    patient: str | None


def default_exports_dir(settings: Settings) -> Path:
    """Beside a SQLite database file ('exports/'), else ./var/exports."""
    if settings.exports_dir:
        return Path(settings.exports_dir)
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent / "exports"
    return Path("var/exports")


def make_runner(settings: Settings, sessions: sessionmaker[Session]) -> ExportRunner:
    """The app's export runner: a fresh client of the configured server per job."""
    return ExportRunner(sessions, lambda: make_client(settings.fhir), default_exports_dir(settings))


def _authorise(caller: Principal, export: ExportRequest) -> ExportRequest:
    """A patient-bound caller exports its own patient only; every type needs read access."""
    if export.patient is None and caller.patient is not None:
        if not caller.patient.startswith("Patient/"):
            raise ExportRequestError("patient", "name the patient as a reference Patient/<id>")
        export = replace(export, patient=caller.patient)
    types = export.types if export.format is ExportFormat.FHIR else RECORD_SOURCE_TYPES
    for resource_type in types:
        caller.require("read", resource_type, export.patient)
    return export


def queue_job(
    runner: ExportRunner, caller: Principal, export: ExportRequest, request_url: str
) -> str:
    """Authorise and queue one export job for the caller; returns its id.

    The one job-creation path: POST /exports and the Bulk Data $export doors both use it.
    `request_url` is the base of the job's file URLs (the runner appends /<id>/files/<name>).
    """
    export = _authorise(caller, export)
    job_id = str(uuid.uuid4())
    with runner.sessions.begin() as session:
        store_jobs.create_export_job(
            session,
            job_id=job_id,
            client_id=caller.client_id,
            patient=caller.patient,
            request=export.to_json(),
            request_url=request_url,
        )
    runner.wake()
    return job_id


def job_for_caller(runner: ExportRunner, caller: Principal, job_id: str) -> ExportJobView:
    """The caller's own job; any other (or unknown, or withdrawn) job is simply not found."""
    with runner.sessions.begin() as session:
        job = store_jobs.get_export_job(session, job_id)
    if (
        job is None
        or job.client_id != caller.client_id
        or job.patient != caller.patient
        or job.status == ExportJobStatus.CANCELLED.value
    ):
        raise NoSuchExportJob(job_id)
    return job


def cancel_job(runner: ExportRunner, caller: Principal, job_id: str) -> None:
    """Cancel the caller's running job, or withdraw a finished one and delete its files."""
    job = job_for_caller(runner, caller, job_id)
    with runner.sessions.begin() as session:
        store_jobs.cancel_export_job(session, job.id)
    if job.status != ExportJobStatus.RUNNING.value:
        # A running job's runner sees the cancel at its next heartbeat and removes its files.
        shutil.rmtree(runner.job_dir(job.id), ignore_errors=True)


def job_file(runner: ExportRunner, caller: Principal, job_id: str, name: str) -> ExportFile:
    """One output file of the caller's completed job, as its manifest lists it."""
    job = job_for_caller(runner, caller, job_id)
    manifest = job.manifest or {"output": [], "error": []}
    listed = [item for key in ("output", "error") for item in manifest[key]]
    item = next((i for i in listed if i["url"].rsplit("/", 1)[-1] == name), None)
    if job.status != ExportJobStatus.COMPLETED.value or item is None:
        raise NoSuchExportFile(name)
    path = runner.job_dir(job.id) / name
    if not path.is_file():
        raise ExportFilesGone(name)
    export_format = ExportFormat(job.request["format"])
    return ExportFile(
        path=path,
        media_type=media_type(name, export_format),
        resource_type=item["type"],
        count=item["count"],
        patient=job.request.get("patient"),
    )

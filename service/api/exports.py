"""Bulk export jobs: POST /exports, GET/DELETE /exports/{id}, GET /exports/{id}/files/{name}.

Shaped like the FHIR Bulk Data kick-off/status/download flow: 202 + Content-Location, polling
with X-Progress and Retry-After, a manifest when complete, DELETE to cancel or withdraw.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import replace
from http import HTTPStatus
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, send_file, url_for
from sqlalchemy.engine import make_url

from service.api import audit
from service.api.bodies import read_json
from service.api.context import principal
from service.api.errors import ApiError, error_response
from service.config import Settings
from service.exports import (
    RECORD_SOURCE_TYPES,
    ExportFormat,
    ExportRequest,
    ExportRequestError,
    ExportRunner,
    export_request,
    media_type,
)
from service.fhir_client import FhirClient
from service.store import exports as jobs
from service.store.exports import ExportJobView
from service.store.models import ExportJobStatus

bp = Blueprint("exports", __name__, url_prefix="/exports")

RUNNER = "diarybridge.export_runner"
POLL_SECONDS = 2  # Retry-After while a job runs


def default_exports_dir(settings: Settings) -> Path:
    """Beside a SQLite database file ('exports/'), else ./var/exports."""
    if settings.exports_dir:
        return Path(settings.exports_dir)
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent / "exports"
    return Path("var/exports")


def _fhir_client(settings: Settings) -> FhirClient:
    from service.sync.target import make_client  # the one place our settings become a client

    return make_client(settings.fhir)


def install(app: Flask, runner: ExportRunner | None = None) -> ExportRunner:
    """Register the blueprint and the app's export runner; resume jobs a restart interrupted."""
    settings: Settings = app.config["SETTINGS"]
    if runner is None:
        runner = ExportRunner(
            app.extensions["diarybridge.sessions"],
            lambda: _fhir_client(settings),
            default_exports_dir(settings),
        )
    app.extensions[RUNNER] = runner
    app.register_blueprint(bp)
    runner.resume_open_jobs()
    return runner


def _runner() -> ExportRunner:
    runner: ExportRunner = current_app.extensions[RUNNER]
    return runner


def _authorise(export: ExportRequest) -> ExportRequest:
    """A patient-bound caller exports its own patient only; every type needs read access."""
    caller = principal()
    if export.patient is None and caller.patient is not None:
        if not caller.patient.startswith("Patient/"):
            raise ExportRequestError("patient", "name the patient as a reference Patient/<id>")
        export = replace(export, patient=caller.patient)
    types = export.types if export.format is ExportFormat.FHIR else RECORD_SOURCE_TYPES
    for resource_type in types:
        caller.require("read", resource_type, export.patient)
    return export


def _job_for_caller(job_id: str) -> ExportJobView:
    """The caller's own job; any other (or unknown, or withdrawn) job is simply not found."""
    caller = principal()
    with current_app.extensions["diarybridge.sessions"].begin() as session:
        job = jobs.get_export_job(session, job_id)
    if (
        job is None
        or job.client_id != caller.client_id
        or job.patient != caller.patient
        or job.status == ExportJobStatus.CANCELLED.value
    ):
        raise ApiError(HTTPStatus.NOT_FOUND, "not_found", "no such export job")
    return job


def queue_job(export: ExportRequest) -> str:
    """Authorise and queue one export job for the caller; returns its id.

    The one job-creation path: POST /exports and the Bulk Data $export doors both use it.
    """
    export = _authorise(export)
    caller = principal()
    job_id = str(uuid.uuid4())
    with current_app.extensions["diarybridge.sessions"].begin() as session:
        jobs.create_export_job(
            session,
            job_id=job_id,
            client_id=caller.client_id,
            patient=caller.patient,
            request=export.to_json(),
            # The base of the job's file URLs (the runner appends /<id>/files/<name>).
            request_url=url_for("exports.kick_off", _external=True),
        )
    _runner().wake()
    return job_id


def status_url(job_id: str) -> str:
    """The absolute URL a client polls (Content-Location of a kick-off)."""
    return url_for("exports.status", job_id=job_id, _external=True)


@bp.post("")
def kick_off() -> Response:
    """Queue an export job; 202 with its status URL in Content-Location."""
    body = read_json()
    if not isinstance(body, dict):
        raise ExportRequestError("_schema", "must be a JSON object")
    job_id = queue_job(export_request(body))
    response = jsonify({"id": job_id, "status": ExportJobStatus.QUEUED.value})
    response.status_code = HTTPStatus.ACCEPTED
    response.headers["Content-Location"] = status_url(job_id)
    return response


@bp.get("/<job_id>")
def status(job_id: str) -> Response:
    """202 with X-Progress while queued or running, 200 with the manifest when complete."""
    job = _job_for_caller(job_id)
    if job.status == ExportJobStatus.COMPLETED.value:
        assert job.manifest is not None
        return jsonify(job.manifest)
    if job.status == ExportJobStatus.FAILED.value:
        # Bulk Data: a failed job answers its status request with a 5xx and the reason.
        return error_response(
            HTTPStatus.INTERNAL_SERVER_ERROR, "export_failed", job.error or "the export failed"
        )
    body: dict[str, Any] = {"id": job.id, "status": job.status, "progress": job.progress}
    response = jsonify(body)
    response.status_code = HTTPStatus.ACCEPTED
    response.headers["X-Progress"] = job.progress or job.status
    response.headers["Retry-After"] = str(POLL_SECONDS)
    return response


@bp.delete("/<job_id>")
def cancel(job_id: str) -> Response:
    """Cancel a running job, or delete a finished one's files; 202."""
    job = _job_for_caller(job_id)
    with current_app.extensions["diarybridge.sessions"].begin() as session:
        jobs.cancel_export_job(session, job.id)
    if job.status != ExportJobStatus.RUNNING.value:
        # A running job's runner sees the cancel at its next heartbeat and removes its files.
        shutil.rmtree(_runner().job_dir(job.id), ignore_errors=True)
    return Response(status=HTTPStatus.ACCEPTED)


@bp.get("/<job_id>/files/<name>")
def download(job_id: str, name: str) -> Response:
    """One output file of a completed job, streamed from disk."""
    job = _job_for_caller(job_id)
    manifest = job.manifest or {"output": [], "error": []}
    listed = {
        item["url"].rsplit("/", 1)[-1] for key in ("output", "error") for item in manifest[key]
    }
    if job.status != ExportJobStatus.COMPLETED.value or name not in listed:
        raise ApiError(HTTPStatus.NOT_FOUND, "not_found", "no such file in this export")
    path = _runner().job_dir(job.id) / name
    if not path.is_file():
        raise ApiError(HTTPStatus.GONE, "gone", "the export's files are no longer kept")
    export_format = ExportFormat(job.request["format"])
    item = next(i for key in ("output", "error") for i in manifest[key] if i["url"].endswith(name))
    audit.note("read", f"export:{item['type']}", [job.request.get("patient")], item["count"])
    return send_file(path, mimetype=media_type(name, export_format), conditional=True)

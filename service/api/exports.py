"""Bulk export jobs: POST /exports, GET/DELETE /exports/{id}, GET /exports/{id}/files/{name}.

Shaped like the FHIR Bulk Data kick-off/status/download flow: 202 + Content-Location, polling
with X-Progress and Retry-After, a manifest when complete, DELETE to cancel or withdraw.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, jsonify, send_file

from service import wiring
from service.api import audit
from service.api.bodies import read_json
from service.api.context import principal
from service.api.errors import error_response
from service.api.export_jobs import queue_job, status_url
from service.exports import ExportRequestError, export_request, jobs
from service.exports.jobs import ExportJobStatus

bp = Blueprint("exports", __name__, url_prefix="/exports")

POLL_SECONDS = 2  # Retry-After while a job runs


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
    job = jobs.job_for_caller(wiring.current().exports, principal(), job_id)
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
    jobs.cancel_job(wiring.current().exports, principal(), job_id)
    return Response(status=HTTPStatus.ACCEPTED)


@bp.get("/<job_id>/files/<name>")
def download(job_id: str, name: str) -> Response:
    """One output file of a completed job, streamed from disk."""
    found = jobs.job_file(wiring.current().exports, principal(), job_id, name)
    audit.note("read", f"export:{found.resource_type}", [found.patient], found.count)
    return send_file(found.path, mimetype=found.media_type, conditional=True)

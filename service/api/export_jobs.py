"""The one way views queue an export job: POST /exports and the Bulk Data $export doors."""

from __future__ import annotations

from flask import url_for

from service import wiring
from service.api.context import principal
from service.exports import ExportRequest, jobs


def queue_job(export: ExportRequest) -> str:
    """Queue one export job for the caller; returns its id."""
    base = url_for("exports.kick_off", _external=True)  # of the job's file URLs
    return jobs.queue_job(wiring.current().exports, principal(), export, base)


def status_url(job_id: str) -> str:
    """The absolute URL a client polls (Content-Location of a kick-off)."""
    return url_for("exports.status", job_id=job_id, _external=True)

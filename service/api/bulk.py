"""The Bulk Data kick-off doors: [base]/$export, [base]/Patient/$export, [base]/Group/[id]/$export.

GET with query parameters or POST with a FHIR Parameters body; `Prefer: respond-async` is
required. The job they queue is an ordinary export job (service/api/exports.py): the answer's
Content-Location is its status URL, and status, manifest, download and DELETE follow from there.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from flask import Blueprint, Response, current_app, request

from service.api import exports
from service.api.bodies import read_json
from service.api.context import principal
from service.api.errors import ApiError
from service.config import Settings
from service.exports import EXPORTABLE_TYPES
from service.exports.kickoff import (
    BulkNotSupported,
    BulkRequestError,
    Level,
    accepted_outcome,
    kickoff_request,
    parameters_of,
)

bp = Blueprint("bulk", __name__)

METHODS = ["GET", "POST"]


def _prefer() -> tuple[bool, bool]:
    """(respond-async asked, handling=strict asked) from the Prefer header(s)."""
    tokens = {
        token.strip().lower().replace(" ", "")
        for header in request.headers.getlist("Prefer")
        for token in header.split(",")
    }
    return "respond-async" in tokens, "handling=strict" in tokens


def _kick_off(level: Level) -> Response:
    respond_async, strict = _prefer()
    if not respond_async:
        raise BulkRequestError("Prefer", "a Bulk Data kick-off needs Prefer: respond-async")
    if request.method == "POST":
        params = parameters_of(read_json())
    else:
        params = list(request.args.items(multi=True))
    export = kickoff_request(params, level=level, strict=strict, kickoff_url=request.url)
    if level == "system" and principal().patient is not None:
        # A system-level export is about no one patient: a patient-bound caller gets the same
        # Forbidden as for another patient's data (Principal.require decides).
        principal().require("read", export.types[0], None)
    job_id = exports.queue_job(export)
    response = Response(
        json.dumps(accepted_outcome(export.ignored)),
        status=HTTPStatus.ACCEPTED,
        mimetype="application/fhir+json",
    )
    response.headers["Content-Location"] = exports.status_url(job_id)
    return response


@bp.route("/$export", methods=METHODS)
def export_system() -> Response:
    """System-level export: every patient's Observations, MedicationAdministrations and
    AdverseEvents."""
    return _kick_off("system")


@bp.route("/Patient/$export", methods=METHODS)
def export_patient() -> Response:
    """Patient-level export (a patient-bound caller: its own patient only)."""
    return _kick_off("patient")


@bp.route("/Group/<group_id>/$export", methods=METHODS)
def export_group(group_id: str) -> Response:
    """Group-level export: the configured Group (DIARYBRIDGE_EXPORT_GROUP) is every patient."""
    settings: Settings = current_app.config["SETTINGS"]
    if not settings.export_group:
        # A 4xx: the caller asked for what this deployment does not offer (no 5xx is ours).
        raise BulkNotSupported(
            "group_id",
            "Group export is not supported here; use [base]/$export or [base]/Patient/$export",
        )
    if group_id != settings.export_group:
        raise ApiError(HTTPStatus.NOT_FOUND, "not_found", "no such Group")
    if principal().patient is not None:
        # A cohort is many patients; a credential bound to one gets what any other is refused.
        principal().require("read", EXPORTABLE_TYPES[0], None)
    return _kick_off("group")

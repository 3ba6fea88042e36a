"""One table: exception type -> HTTP status and error code; one handler renders them all."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, has_request_context, jsonify, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from mappings import errors as mapping_errors
from service.convert import FhirInputError
from service.exports.jobs import ExportFilesGone, NoSuchExportFile, NoSuchExportJob
from service.exports.kickoff import BulkRequestError
from service.exports.request import ExportRequestError
from service.json_input import JsonTooDeep
from service.negotiation import NegotiationError
from service.schemas import ErrorSchema, Problem, flatten_messages
from service.schemas.loading import TooManyRecords
from service.sync.errors import (
    AmbiguousRecordError,
    BadPageToken,
    BadPatientParameter,
    FhirClientError,
    NoFhirServer,
    NoSuchSyncItem,
    PatientMismatchError,
    SearchRefused,
    StorageUnavailable,
)

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error a view raises on purpose, with its status, code and problems."""

    def __init__(
        self,
        status: HTTPStatus,
        code: str,
        message: str,
        problems: list[Problem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.problems = problems or []
        self.headers = headers or {}


# Errors that name their field (`exc.field`) in their own text.
FIELD_ERRORS = (FhirInputError, NegotiationError, ExportRequestError, BadPatientParameter)


def _problems(exc: Exception) -> list[Problem]:
    if isinstance(exc, ValidationError):
        return flatten_messages(exc.messages)
    if isinstance(exc, FIELD_ERRORS):
        return [Problem(exc.field, str(exc))]
    if isinstance(exc, SearchRefused):
        return [Problem(field, text) for field, text in exc.problems]
    if isinstance(exc, JsonTooDeep):
        return [Problem("$", str(exc))]
    if isinstance(exc, PatientMismatchError | AmbiguousRecordError):
        return [Problem("patient", str(exc))]
    return []


# (exception type, status, error code, message shown; None: the exception's own text)
TABLE: list[tuple[type[Exception], HTTPStatus, str, str | None]] = [
    (ValidationError, HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_input", "the input has problems"),
    (FhirInputError, HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_fhir_input", None),
    (NegotiationError, HTTPStatus.BAD_REQUEST, "bad_parameter", None),
    (JsonTooDeep, HTTPStatus.UNPROCESSABLE_ENTITY, "too_deep", None),
    (
        ExportRequestError,
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "invalid_export_request",
        "the export request has problems",
    ),
    # The Bulk Data kick-off's own rules: the IG answers a refused kick-off with a 4xx.
    (BulkRequestError, HTTPStatus.BAD_REQUEST, "invalid_bulk_request", None),
    (TooManyRecords, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too_many_records", None),
    # A record id is its patient's forever: reusing it for another patient is refused whole.
    (
        PatientMismatchError,
        HTTPStatus.CONFLICT,
        "record_of_another_patient",
        "a record id in the request belongs to another patient",
    ),
    (
        AmbiguousRecordError,
        HTTPStatus.CONFLICT,
        "ambiguous_record",
        "several patients have a record with this id: name one with ?patient=",
    ),
    # "Not yours" answers exactly like "not there": one body for both.
    (NoSuchSyncItem, HTTPStatus.NOT_FOUND, "not_found", "no such sync request or entry"),
    (
        BadPatientParameter,
        HTTPStatus.BAD_REQUEST,
        "bad_parameter",
        "the parameter has problems",
    ),
    (BadPageToken, HTTPStatus.BAD_REQUEST, "bad_parameter", None),
    # The caller's own search, refused by the server: where and why, as issue code and severity.
    (SearchRefused, HTTPStatus.BAD_REQUEST, "invalid_search", "the FHIR server refused the search"),
    (NoSuchExportJob, HTTPStatus.NOT_FOUND, "not_found", "no such export job"),
    (NoSuchExportFile, HTTPStatus.NOT_FOUND, "not_found", "no such file in this export"),
    (ExportFilesGone, HTTPStatus.GONE, "gone", "the export's files are no longer kept"),
    (mapping_errors.NotOurResource, HTTPStatus.UNPROCESSABLE_ENTITY, "not_our_resource", None),
    (mapping_errors.InvalidInput, HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_fhir_input", None),
    (
        mapping_errors.UnsupportedVersion,
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "unsupported_version",
        None,
    ),
    # Disk full, read-only, unreachable or busy database (Retry-After says when to try again).
    (
        StorageUnavailable,
        HTTPStatus.SERVICE_UNAVAILABLE,
        "storage_unavailable",
        "the database cannot serve now; try again later",
    ),
    # The clinic's FHIR server: not configured, or failing. Its diagnostics may echo patient
    # values, so the answer names the failure only.
    (NoFhirServer, HTTPStatus.SERVICE_UNAVAILABLE, "no_fhir_server", "no FHIR server configured"),
    (
        FhirClientError,
        HTTPStatus.BAD_GATEWAY,
        "fhir_server_error",
        "the clinic's FHIR server did not answer as expected",
    ),
]


# Endpoints that answer FHIR resources answer their errors as an OperationOutcome too.
FHIR_SHAPED_ENDPOINTS = {
    "patients.observations",
    # The Bulk Data doors (service/api/bulk.py) and the job flow they share with POST /exports.
    "bulk.export_system",
    "bulk.export_patient",
    "bulk.export_group",
    "metadata.capability",
    "metadata.smart",
    "metadata.local_code_system",
    "exports.status",
    "exports.cancel",
    "exports.download",
}
# HTTP status -> OperationOutcome issue type (http://hl7.org/fhir/issue-type).
ISSUE_TYPE = {
    HTTPStatus.BAD_REQUEST: "invalid",
    HTTPStatus.UNAUTHORIZED: "login",
    HTTPStatus.FORBIDDEN: "forbidden",
    HTTPStatus.NOT_FOUND: "not-found",
    HTTPStatus.CONFLICT: "conflict",
    HTTPStatus.GONE: "not-found",
    HTTPStatus.UNPROCESSABLE_ENTITY: "invalid",
    HTTPStatus.SERVICE_UNAVAILABLE: "transient",
    HTTPStatus.BAD_GATEWAY: "transient",
}


def operation_outcome(
    status: HTTPStatus,
    code: str,
    message: str,
    problems: list[Problem],
    issue_type: str | None = None,
) -> dict[str, Any]:
    """The error as a FHIR OperationOutcome: one issue per problem (or one for the message)."""
    issue_type = issue_type or ISSUE_TYPE.get(status, "exception")
    issues = [
        {"severity": "error", "code": issue_type, "diagnostics": p.message, "expression": [p.field]}
        for p in problems
    ] or [{"severity": "error", "code": issue_type, "diagnostics": message}]
    for issue in issues:
        issue["details"] = {"text": code}
    return {"resourceType": "OperationOutcome", "issue": issues}


def error_response(
    status: HTTPStatus,
    code: str,
    message: str,
    problems: list[Problem] | None = None,
    issue_type: str | None = None,
) -> Response:
    """Render the one error body (an OperationOutcome on FHIR-shaped endpoints)."""
    if has_request_context() and request.endpoint in FHIR_SHAPED_ENDPOINTS:
        outcome = operation_outcome(status, code, message, problems or [], issue_type)
        return Response(json.dumps(outcome), status=status, mimetype="application/fhir+json")
    body: dict[str, Any] = ErrorSchema().dump(
        {"error": code, "message": message, "problems": problems or []}
    )
    response = jsonify(body)
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    """Install the table as Flask error handlers, plus JSON bodies for HTTP errors and bugs."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        response = error_response(exc.status, exc.code, exc.message, exc.problems)
        response.headers.update(exc.headers)
        return response

    handlers: dict[type[Exception], Callable[[Exception], Response]] = {}
    for exc_type, status, code, message in TABLE:

        def handler(
            exc: Exception, status: HTTPStatus = status, code: str = code, msg: str | None = message
        ) -> Response:
            issue_type = getattr(exc, "issue_code", None)  # the exception's own, if it has one
            response = error_response(status, code, msg or str(exc), _problems(exc), issue_type)
            if isinstance(exc, StorageUnavailable):
                response.headers["Retry-After"] = str(exc.retry_after)
                log.warning("storage unavailable: %s", exc.kind)
            return response

        app.register_error_handler(exc_type, handler)
        handlers[exc_type] = handler

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        original = getattr(exc, "original_exception", None)
        if isinstance(original, StorageUnavailable):
            # Raised in an after-request hook (the audit write): Flask hands it over as a 500.
            return handlers[StorageUnavailable](original)
        status = HTTPStatus(exc.code or HTTPStatus.INTERNAL_SERVER_ERROR)
        code = status.phrase.lower().replace(" ", "_")
        return error_response(status, code, exc.description or status.phrase)

    @app.errorhandler(Exception)
    def _bug(exc: Exception) -> Response:
        # A mapping bug (InvalidResource) lands here too: never invalid FHIR on the wire.
        # Its message may quote input values (pydantic's do): log only the type and frames.
        frames = "".join(traceback.format_tb(exc.__traceback__))
        log.error("unhandled %s\n%s", type(exc).__name__, frames)
        return error_response(
            HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "an internal error occurred"
        )

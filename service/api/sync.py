"""POST /sync/*: accept records into the durable outbox and deliver them; sync state and requeue."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Blueprint, current_app, request, url_for
from sqlalchemy.orm import Session, sessionmaker

from service import store
from service.api import audit
from service.api.bodies import read_json
from service.api.context import (
    PRIMARY_TYPE,
    caller_patients,
    principal,
    require_records,
    sees_diagnostics,
)
from service.api.errors import ApiError
from service.fhir_client import clean_diagnostics
from service.observability import current_request_id
from service.schemas import Problem, RecordKind, load_records
from service.security import parse_patient_key
from service.sync.accept import accept_records
from service.sync.outcomes import RecordOutcome, request_outcomes
from service.sync.runtime import SyncRuntime
from service.sync.subjects import visible_conflict

bp = Blueprint("sync", __name__, url_prefix="/sync")

Json = dict[str, Any]


def sessions() -> sessionmaker[Session]:
    """The app's session factory."""
    factory: sessionmaker[Session] = current_app.extensions["diarybridge.sessions"]
    return factory


def runtime() -> SyncRuntime:
    """The app's sync runtime (FHIR client, worker)."""
    sync: SyncRuntime = current_app.extensions["diarybridge.sync"]
    return sync


def _wants_async() -> bool:
    prefer = {p.strip().lower() for p in request.headers.get("Prefer", "").split(",")}
    return "respond-async" in prefer or current_app.config["SETTINGS"].sync_async


def _resource_view(state: store.ResourceState) -> Json:
    return {
        "resource_type": state.resource_type,
        "id": state.server_id,
        "version_id": state.version_id,
    }


def error_view(stored: Json | None, live: store.ErrorInfo | None = None) -> Json | None:
    """A push error as a caller sees it: status, issue code, severity and expression.

    Diagnostics (cleaned) go to system/* callers only: from this request's push, else from a
    ledger row written before diagnostics stopped being stored.
    """
    if not stored:
        return None
    view: Json = {key: stored.get(key) for key in ("status", "code", "severity")}
    view["expression"] = list(stored.get("expression") or [])
    if sees_diagnostics():
        text = live.diagnostics if live is not None else stored.get("diagnostics")
        view["diagnostics"] = clean_diagnostics(text) if isinstance(text, str) else None
    return view


def _result(record: RecordOutcome, live: store.ErrorInfo | None) -> Json:
    result: Json = {
        "kind": record.kind,
        "id": record.source_id,
        "outcome": record.outcome,
        "resources": [_resource_view(r) for r in record.resources],
    }
    if record.error:
        result["error"] = error_view(record.error, live)
    return result


def _sync(kind: RecordKind) -> tuple[Json, HTTPStatus, dict[str, str]]:
    payload = require_records(read_json(), kind)
    settings = current_app.config["SETTINGS"]
    records = load_records(payload, kind, settings.max_records_per_request)
    namespace = principal().client_id
    # A patient-bound caller's ids are its patient's own; an unbound one's are the app's.
    per_patient = principal().patient is not None
    request_id = accept_records(sessions(), namespace, records, per_patient=per_patient)
    audit.note_records("write", kind.value, payload if isinstance(payload, list) else [payload])
    status_url = url_for("sync.request_status", request_id=request_id)
    headers = {"Content-Location": status_url}
    if _wants_async() or not runtime().fhir.base_url:
        # Committed before we answer: a 202 is a promise the worker will keep.
        body = {"request_id": request_id, "status_url": status_url, "accepted": len(records)}
        return body, HTTPStatus.ACCEPTED, headers
    worker = runtime().worker(request_id=current_request_id())
    # Within the budget: a slow or hung server leaves the rest `queued` for the worker.
    drained = worker.drain(request_id=request_id, budget=settings.sync_push_budget_seconds)
    # The server's own words live only as long as this request (the ledger keeps none).
    live = {d.entry.source_id: d.error for d in drained}
    # Read back, not taken from the drain: another worker may have delivered some of them.
    by_id = {r.source_id: r for r in request_outcomes(sessions(), request_id)}
    id_field = kind.id_field
    results = []
    for record in records:
        source_id = getattr(record, id_field)
        results.append(_result(by_id[source_id], live.get(source_id)))
    return (
        {"request_id": request_id, "status_url": status_url, "results": results},
        HTTPStatus.OK,
        headers,
    )


@bp.post("/diary-entries")
def diary_entries() -> tuple[Json, HTTPStatus, dict[str, str]]:
    """Validate, store and push diary entries; per-entry outcomes (or 202 when asynchronous)."""
    return _sync(RecordKind.DIARY_ENTRY)


@bp.post("/infusions")
def infusions() -> tuple[Json, HTTPStatus, dict[str, str]]:
    """Validate, store and push infusion records; per-record outcomes (or 202)."""
    return _sync(RecordKind.INFUSION)


def _not_found() -> ApiError:
    # One body for "not there" and "another patient's": the answer reveals nothing.
    return ApiError(HTTPStatus.NOT_FOUND, "not_found", "no such sync request or entry")


def _patient_param() -> str | None:
    """?patient=: which patient's record, where several patients of an app share an id."""
    value = request.args.get("patient")
    if value is None:
        return None
    try:
        return parse_patient_key(value)
    except ValueError:
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            "bad_parameter",
            "the parameter has problems",
            [Problem("patient", "must be Patient/<id> or system|value")],
        ) from None


def _retract(kind: RecordKind, source_id: str) -> tuple[Json, HTTPStatus, dict[str, str]]:
    namespace = principal().client_id
    # The scope first, on the caller's own patient: whether the record exists must not
    # decide between 403 and 404.
    principal().require("write", PRIMARY_TYPE[kind], principal().patient)
    patient = _patient_param()
    with sessions().begin() as session:
        view = store.request_retraction(
            session, namespace, kind.value, source_id, patients=caller_patients(), patient=patient
        )
        if view is None:
            raise _not_found()
        principal().require("write", PRIMARY_TYPE[kind], view.patient_key)
    audit.note("write", kind.value, [view.patient_key], 1)
    status_url = url_for("sync.entry", kind=kind.value, source_id=source_id)
    # Committed: the worker marks the server's resources entered-in-error (never deletes them).
    body = {"kind": kind.value, "id": source_id, "status": view.status, "status_url": status_url}
    return body, HTTPStatus.ACCEPTED, {"Content-Location": status_url}


@bp.delete("/diary-entries/<source_id>")
def retract_diary_entry(source_id: str) -> tuple[Json, HTTPStatus, dict[str, str]]:
    """The app deleted an entry: withdraw its resources (entered-in-error) on the server."""
    return _retract(RecordKind.DIARY_ENTRY, source_id)


@bp.delete("/infusions/<source_id>")
def retract_infusion(source_id: str) -> tuple[Json, HTTPStatus, dict[str, str]]:
    """The app deleted an infusion record: withdraw its resources on the server."""
    return _retract(RecordKind.INFUSION, source_id)


@bp.get("/requests/<request_id>")
def request_status(request_id: str) -> tuple[Json, HTTPStatus]:
    """Progress of an accepted request: each entry's state; 200 once nothing is queued."""
    caller = principal()
    # Only the client that sent it, and only its items of the caller's patients: others learn
    # nothing, not even that it exists.
    with sessions().begin() as session:
        progress = store.get_request(
            session, request_id, client_id=caller.client_id, patients=caller_patients()
        )
    if progress is None:
        raise _not_found()
    body = {
        "request_id": progress.request_id,
        "done": progress.done,
        "counts": progress.counts,
        "items": [
            {"kind": i.kind, "id": i.source_id, "disposition": i.disposition, "state": i.state}
            for i in progress.items
        ],
    }
    return body, HTTPStatus.OK if progress.done else HTTPStatus.ACCEPTED


@bp.get("/status")
def status() -> tuple[Json, HTTPStatus]:
    """Counts by state and the oldest queued age: for operators (user/ or system/ read)."""
    principal().require("read", "Observation", None)
    with sessions().begin() as session:
        counts = store.status_counts(session)
    return {
        "counts": counts.counts,
        "in_flight": counts.in_flight,
        "oldest_queued_age_seconds": counts.oldest_queued_age_seconds,
    }, HTTPStatus.OK


@bp.get("/entries/<kind>/<source_id>")
def entry(kind: str, source_id: str) -> tuple[Json, HTTPStatus]:
    """One ledger entry: its state, last error, conflict and the server's resource ids."""
    try:
        record_kind = RecordKind(kind)
    except ValueError:
        raise _not_found() from None
    namespace = request.args.get("namespace") or principal().client_id
    principal().require("read", PRIMARY_TYPE[record_kind], principal().patient)
    patient = _patient_param()
    with sessions().begin() as session:
        view = store.get_entry(
            session,
            namespace,
            record_kind.value,
            source_id,
            patients=caller_patients(),
            patient=patient,
        )
    if view is None:
        raise _not_found()
    principal().require("read", PRIMARY_TYPE[record_kind], view.patient_key)
    audit.note("read", record_kind.value, [view.patient_key], 1)
    return {
        "kind": view.kind,
        "id": view.source_id,
        "namespace": view.namespace,
        "status": view.status,
        "in_flight": view.in_flight,
        "attempts": view.attempts,
        "last_error": error_view(view.last_error),
        "conflict": visible_conflict(view.conflict, view.patient_key),
        "resources": [_resource_view(r) for r in view.resources],
        "record": view.record,
        "updated_at": view.updated_at.isoformat(),
    }, HTTPStatus.OK


@bp.post("/requeue")
def requeue() -> tuple[Json, HTTPStatus]:
    """Queue failed entries (and, if asked, conflicts) again: for operators (system/ write)."""
    principal().require("write", "Observation", None)
    body = read_json()
    if not isinstance(body, dict) or set(body) - {"include_conflicts"}:
        raise ApiError(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            "invalid_input",
            "the body takes include_conflicts",
        )
    include = body.get("include_conflicts", False)
    if not isinstance(include, bool):
        raise ApiError(
            HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_input", "include_conflicts must be a boolean"
        )
    with sessions().begin() as session:
        count = store.requeue_failed(session, include_conflicts=include)
    return {"requeued": count}, HTTPStatus.OK

"""POST /sync/*: accept records into the durable outbox and deliver them; sync state and requeue."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Blueprint, request, url_for

from service import wiring
from service.api import audit
from service.api.bodies import read_json
from service.api.context import PRIMARY_TYPE, principal, require_records, sees_diagnostics
from service.api.errors import ApiError
from service.observability import current_request_id
from service.schemas import RecordKind, load_records
from service.sync import answers, requests
from service.sync.requests import NoSuchSyncItem

bp = Blueprint("sync", __name__, url_prefix="/sync")

Json = dict[str, Any]
KINDS = {kind.value for kind in RecordKind}


def _wants_async() -> bool:
    prefer = {p.strip().lower() for p in request.headers.get("Prefer", "").split(",")}
    return "respond-async" in prefer or wiring.current().settings.sync_async


def _sync(kind: RecordKind) -> tuple[Json, HTTPStatus, dict[str, str]]:
    payload = require_records(read_json(), kind)
    settings = wiring.current().settings
    records = load_records(payload, kind, settings.max_records_per_request)
    answer = requests.sync_records(
        wiring.current().sync,
        principal(),
        records,
        push_now=not _wants_async(),
        budget=settings.sync_push_budget_seconds,
        trace_id=current_request_id(),
    )
    audit.note_records("write", kind.value, payload if isinstance(payload, list) else [payload])
    status_url = url_for("sync.request_status", request_id=answer.request_id)
    headers = {"Content-Location": status_url}
    if answer.results is None:
        # Committed before we answer: a 202 is a promise the worker will keep.
        body = {"request_id": answer.request_id, "status_url": status_url}
        return {**body, "accepted": answer.accepted}, HTTPStatus.ACCEPTED, headers
    operator = sees_diagnostics()
    results = [answers.record_result(r, diagnostics=operator) for r in answer.results]
    body = {"request_id": answer.request_id, "status_url": status_url, "results": results}
    return body, HTTPStatus.OK, headers


@bp.post("/diary-entries")
def diary_entries() -> tuple[Json, HTTPStatus, dict[str, str]]:
    """Validate, store and push diary entries; per-entry outcomes (or 202 when asynchronous)."""
    return _sync(RecordKind.DIARY_ENTRY)


@bp.post("/infusions")
def infusions() -> tuple[Json, HTTPStatus, dict[str, str]]:
    """Validate, store and push infusion records; per-record outcomes (or 202)."""
    return _sync(RecordKind.INFUSION)


def _retract(kind: RecordKind, source_id: str) -> tuple[Json, HTTPStatus, dict[str, str]]:
    view = requests.retract(
        wiring.current().sessions,
        principal(),
        kind.value,
        PRIMARY_TYPE[kind],
        source_id,
        patient=request.args.get("patient"),
    )
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
    progress = requests.request_progress(wiring.current().sessions, principal(), request_id)
    return answers.progress_view(progress), HTTPStatus.OK if progress.done else HTTPStatus.ACCEPTED


@bp.get("/status")
def status() -> tuple[Json, HTTPStatus]:
    """Counts by state and the oldest queued age: for operators (user/ or system/ read)."""
    principal().require("read", "Observation", None)
    counts = requests.outbox_status(wiring.current().sessions)
    return answers.status_view(counts), HTTPStatus.OK


@bp.get("/entries/<kind>/<source_id>")
def entry(kind: str, source_id: str) -> tuple[Json, HTTPStatus]:
    """One ledger entry: its state, last error, conflict and the server's resource ids."""
    if kind not in KINDS:
        raise NoSuchSyncItem(kind)  # a kind we do not have: no such entry either
    record_kind = RecordKind(kind)
    view = requests.ledger_entry(
        wiring.current().sessions,
        principal(),
        request.args.get("namespace") or principal().client_id,
        record_kind.value,
        PRIMARY_TYPE[record_kind],
        source_id,
        patient=request.args.get("patient"),
    )
    audit.note("read", record_kind.value, [view.patient_key], 1)
    return answers.entry_view(view, diagnostics=sees_diagnostics()), HTTPStatus.OK


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
    count = requests.requeue(wiring.current().sessions, include_conflicts=include)
    return {"requeued": count}, HTTPStatus.OK

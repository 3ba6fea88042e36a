"""The JSON answers of /sync/*: pure functions of the use cases' values (no Flask, no store I/O).

Diagnostics are the FHIR server's own words and may quote the body it refused: only an operator
(`diagnostics=True`) sees them, cleaned.
"""

from __future__ import annotations

from typing import Any

from service import store
from service.fhir_client import clean_diagnostics
from service.sync.requests import RecordResult
from service.sync.subjects import visible_conflict

Json = dict[str, Any]


def resource_view(state: store.ResourceState) -> Json:
    """A server resource of a record: its type, id and version."""
    return {
        "resource_type": state.resource_type,
        "id": state.server_id,
        "version_id": state.version_id,
    }


def error_view(
    stored: Json | None, live: store.ErrorInfo | None = None, *, diagnostics: bool = False
) -> Json | None:
    """A push error as a caller sees it: status, issue code, severity and expression.

    Diagnostics (cleaned) go to operators only: from this request's push, else from a
    ledger row written before diagnostics stopped being stored.
    """
    if not stored:
        return None
    view: Json = {key: stored.get(key) for key in ("status", "code", "severity")}
    view["expression"] = list(stored.get("expression") or [])
    if diagnostics:
        text = live.diagnostics if live is not None else stored.get("diagnostics")
        view["diagnostics"] = clean_diagnostics(text) if isinstance(text, str) else None
    return view


def record_result(result: RecordResult, *, diagnostics: bool = False) -> Json:
    """One record's result in the answer of a push."""
    record = result.outcome
    answer: Json = {
        "kind": record.kind,
        "id": record.source_id,
        "outcome": record.outcome,
        "resources": [resource_view(r) for r in record.resources],
    }
    if record.error:
        answer["error"] = error_view(record.error, result.live, diagnostics=diagnostics)
    return answer


def progress_view(progress: store.RequestProgress) -> Json:
    """An accepted request's progress: counts by state and each item's state."""
    return {
        "request_id": progress.request_id,
        "done": progress.done,
        "counts": progress.counts,
        "items": [
            {"kind": i.kind, "id": i.source_id, "disposition": i.disposition, "state": i.state}
            for i in progress.items
        ],
    }


def entry_view(view: store.EntryView, *, diagnostics: bool = False) -> Json:
    """One ledger entry: state, last error, conflict (another patient's copies withheld)."""
    return {
        "kind": view.kind,
        "id": view.source_id,
        "namespace": view.namespace,
        "status": view.status,
        "in_flight": view.in_flight,
        "attempts": view.attempts,
        "last_error": error_view(view.last_error, diagnostics=diagnostics),
        "conflict": visible_conflict(view.conflict, view.patient_key),
        "resources": [resource_view(r) for r in view.resources],
        "record": view.record,
        "updated_at": view.updated_at.isoformat(),
    }


def status_view(counts: store.StatusCounts) -> Json:
    """The outbox's counts by state, in flight, and the oldest queued age."""
    return {
        "counts": counts.counts,
        "in_flight": counts.in_flight,
        "oldest_queued_age_seconds": counts.oldest_queued_age_seconds,
    }

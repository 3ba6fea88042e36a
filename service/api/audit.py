"""The audit trail: views note whose data they read or wrote; one row per patient on success.

A view calls `note(...)`; after a successful (2xx) answer the hook writes the rows in one
transaction. Rows carry ids and counts (who, which patient, action, kind, how many), never values.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from flask import Flask, Response, current_app, g

from service.api.context import payload_patient_key
from service.observability import current_request_id
from service.security import Principal
from service.store import record_audit

log = logging.getLogger(__name__)

AuditAction = Literal["read", "write"]
UNKNOWN_PATIENT = None  # a record whose patient we cannot key is still audited, without one


@dataclass(frozen=True)
class Note:
    """One thing a view did: `count` records of `kind`, `action`ed, for each of `patients`."""

    action: AuditAction
    kind: str
    patients: tuple[str | None, ...]
    count: int


def note(action: AuditAction, kind: str, patients: Iterable[str | None], count: int) -> None:
    """Note that this request `action`ed `count` records of `kind` of each of `patients`."""
    if action not in ("read", "write"):
        raise ValueError(f"unknown audit action {action!r}")
    notes: list[Note] = g.setdefault("audit_notes", [])
    notes.append(Note(action, kind, tuple(dict.fromkeys(patients)), count))


def note_records(action: AuditAction, kind: str, items: Iterable[Any]) -> None:
    """Note records in our JSON format, one note per patient with that patient's count."""
    per_patient = Counter(payload_patient_key(item) for item in items)
    for patient, count in per_patient.items():
        note(action, kind, [patient], count)


def notes_of_request() -> list[Note]:
    """What the views of this request have noted so far."""
    return list(g.get("audit_notes", []))


def _write_rows(notes: list[Note]) -> int:
    caller: Principal = g.principal
    scopes = " ".join(sorted(str(scope) for scope in caller.scopes))
    request_id = current_request_id()
    rows = 0
    with current_app.extensions["diarybridge.sessions"].begin() as session:
        for item in notes:
            for patient in item.patients or (UNKNOWN_PATIENT,):
                record_audit(
                    session,
                    client_id=caller.client_id,
                    scopes=scopes,
                    action=item.action,
                    patient=patient,
                    resource_kind=item.kind,
                    count=item.count,
                    request_id=request_id,
                )
                rows += 1
    return rows


def install(app: Flask) -> None:
    """Write the noted rows after each 2xx answer; if writing fails, the request fails."""

    @app.after_request
    def _audit(response: Response) -> Response:
        notes = notes_of_request()
        if not notes or not 200 <= response.status_code < 300:
            return response
        g.audit_notes = []  # written once, even if a later hook turns this into an error
        rows = _write_rows(notes)
        log.info("audit: %d row(s) written", rows, extra={"audit_rows": rows})
        return response

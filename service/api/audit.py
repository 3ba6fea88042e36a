"""The audit trail: views note whose data they read or wrote; one row per patient on success.

A view calls `note(...)`; after a successful (2xx) answer the hook writes the rows in one
transaction. Rows carry ids and counts (who, which patient, action, kind, how many), never values.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any

from flask import Flask, Response, g

from service import wiring
from service.api.context import payload_patient_key, principal
from service.audit import AuditAction, Note, write_trail
from service.observability import current_request_id

log = logging.getLogger(__name__)

__all__ = ["AuditAction", "Note", "install", "note", "note_records", "notes_of_request"]


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


def install(app: Flask) -> None:
    """Write the noted rows after each 2xx answer; if writing fails, the request fails."""

    @app.after_request
    def _audit(response: Response) -> Response:
        notes = notes_of_request()
        if not notes or not 200 <= response.status_code < 300:
            return response
        g.audit_notes = []  # written once, even if a later hook turns this into an error
        rows = write_trail(wiring.current().sessions, principal(), notes, current_request_id())
        log.info("audit: %d row(s) written", rows, extra={"audit_rows": rows})
        return response

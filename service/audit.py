"""The audit trail: what a request read or wrote, written as rows (ids and counts, no values)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.orm import Session, sessionmaker

from service.security import Principal
from service.store import record_audit

AuditAction = Literal["read", "write"]
UNKNOWN_PATIENT = None  # a record whose patient we cannot key is still audited, without one


@dataclass(frozen=True)
class Note:
    """One thing a view did: `count` records of `kind`, `action`ed, for each of `patients`."""

    action: AuditAction
    kind: str
    patients: tuple[str | None, ...]
    count: int


def write_trail(
    sessions: sessionmaker[Session],
    caller: Principal,
    notes: Sequence[Note],
    request_id: str | None,
) -> int:
    """Write one row per note and patient in one transaction; returns how many."""
    scopes = " ".join(sorted(str(scope) for scope in caller.scopes))
    rows = 0
    with sessions.begin() as session:
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

"""The audit log: who read or wrote which patient's data, recorded in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from service.store.clock import utcnow
from service.store.models import AuditLog


def record_audit(
    session: Session,
    *,
    client_id: str,
    scopes: str | Iterable[str],
    action: str,
    patient: str | None = None,
    resource_kind: str | None = None,
    count: int | None = None,
    request_id: str | None = None,
    at: datetime | None = None,
) -> int:
    """Append one audit row (ids and counts, never values); returns its id."""
    scope_text = scopes if isinstance(scopes, str) else " ".join(sorted(scopes))
    row = AuditLog(
        at=at or utcnow(),
        client_id=client_id,
        scopes=scope_text,
        patient=patient,
        action=action,
        resource_kind=resource_kind,
        count=count,
        request_id=request_id,
    )
    session.add(row)
    session.flush()
    return row.id

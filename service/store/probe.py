"""Readiness of the store: can it take a write now? (Nothing the probe writes is kept.)"""

from __future__ import annotations

from sqlalchemy import Engine, insert

from service.store.clock import utcnow
from service.store.models import AuditLog

# Bigger than a few pages, so the probe needs fresh pages like a real request does: a database
# at its size limit fails it, where a tiny write might still fit in a half-empty page.
PROBE_BYTES = 64 * 1024


def probe_write(engine: Engine) -> None:
    """Write a row in a transaction that is rolled back; raises what a real write would
    (StorageUnavailable for a read-only, full or unreachable database)."""
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            connection.execute(
                insert(AuditLog).values(
                    at=utcnow(),
                    client_id="diarybridge-readiness-probe",
                    scopes="x" * PROBE_BYTES,
                    action="readiness_probe",
                )
            )
        finally:
            transaction.rollback()

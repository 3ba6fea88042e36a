"""Reads for signals: one patient's current records from the ledger, as stored (JSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store.models import LedgerEntry, LedgerResource, LedgerStatus


@dataclass(frozen=True)
class StoredRecord:
    """One record of a patient as the app sent it last: namespace, id space (patient_scope: the
    patient key when the app numbers records per patient, else ""), kind, id, hash and JSON text.

    The text stays unparsed: a caller that already holds this content (same hash) skips it.
    """

    namespace: str
    patient_scope: str
    kind: str
    source_id: str
    content_hash: str
    record_json: str

    def record(self) -> dict[str, Any]:
        """The record's JSON, parsed."""
        parsed: dict[str, Any] = json.loads(self.record_json)
        return parsed


def patient_records(session: Session, patient_key: str) -> list[StoredRecord]:
    """The patient's records in every namespace, leaving out the ones the app withdrew."""
    rows = session.execute(
        select(
            LedgerEntry.namespace,
            LedgerEntry.patient_scope,
            LedgerEntry.kind,
            LedgerEntry.source_id,
            LedgerEntry.content_hash,
            LedgerEntry.record_json,
        ).where(
            LedgerEntry.patient_key == patient_key,
            LedgerEntry.status != LedgerStatus.RETRACTED.value,
            LedgerEntry.retract_requested.is_(False),
        )
    )
    return [StoredRecord(*row) for row in rows]


def server_ids(session: Session, patient_key: str) -> dict[tuple[str, str, str, str, str], str]:
    """(namespace, patient scope, kind, source id, part) -> the server's id of the patient's
    sent resources."""
    rows = session.execute(
        select(
            LedgerEntry.namespace,
            LedgerEntry.patient_scope,
            LedgerEntry.kind,
            LedgerEntry.source_id,
            LedgerResource.identifier_value,
            LedgerResource.server_id,
        )
        .join(LedgerResource, LedgerResource.ledger_id == LedgerEntry.id)
        .where(LedgerEntry.patient_key == patient_key, LedgerResource.server_id.is_not(None))
    )
    # identifier value = [patient/<token>/]kind/source id/part; a part never contains "/".
    return {
        (ns, scope, kind, sid, value.rpartition("/")[2]): server_id
        for ns, scope, kind, sid, value, server_id in rows
        if server_id is not None
    }

"""Accepting records into the durable outbox: validated records in, one committed transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session, sessionmaker

from mappings.records import PatientRef, Record
from service import store
from service.schemas import dump_record
from service.schemas.loading import ID_FIELD, kind_of
from service.security import patient_key


def record_patient_key(patient: PatientRef) -> str:
    """The patient of a record as the key the ledger and the security layer use."""
    return patient_key(patient.reference, patient.identifier_system, patient.identifier_value)


def accept_items(namespace: str, records: Sequence[Record]) -> list[store.AcceptItem]:
    """Records as ledger items: our JSON format, keyed by the app's namespace and record id."""
    items = []
    for record in records:
        kind = kind_of(record)
        body = dump_record(record)
        items.append(
            store.AcceptItem(
                namespace=namespace,
                kind=kind.value,
                source_id=body[ID_FIELD[kind]],
                patient_key=record_patient_key(record.patient),
                record=body,
            )
        )
    return items


def accept_records(
    sessions: sessionmaker[Session], namespace: str, records: Sequence[Record]
) -> str:
    """Store records in the outbox in one transaction; returns the sync request id.

    Only what this commits may be acknowledged: the caller answers after it returns.
    """
    with sessions.begin() as session:
        return store.accept(session, namespace, accept_items(namespace, records))

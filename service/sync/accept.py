"""Accepting records into the durable outbox: validated records in, one committed transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session, sessionmaker

from mappings.record_json import record_to_json
from mappings.records import PatientRef, Record, RecordKind, record_id
from mappings.signals import RuleSet
from service import store
from service.security import patient_key
from service.signals.state import on_accepted


def record_patient_key(patient: PatientRef) -> str:
    """The patient of a record as the key the ledger and the security layer use."""
    return patient_key(patient.reference, patient.identifier_system, patient.identifier_value)


def accept_items(
    namespace: str, records: Sequence[Record], *, per_patient: bool = False
) -> list[store.AcceptItem]:
    """Records as ledger items: our JSON format, keyed by the app's namespace and record id.

    per_patient: the sender is bound to the records' patient, so their ids are the patient's
    own (two patients of one app may use the same id without touching each other's record).
    """
    items = []
    for record in records:
        body = record_to_json(record)  # validated at the edge already: no schema here
        items.append(
            store.AcceptItem(
                namespace=namespace,
                kind=RecordKind.of(record).value,
                source_id=record_id(record),
                patient_key=record_patient_key(record.patient),
                record=body,
                per_patient=per_patient,
            )
        )
    return items


def accept_records(
    sessions: sessionmaker[Session],
    namespace: str,
    records: Sequence[Record],
    *,
    per_patient: bool = False,
    signal_rules: RuleSet | None = None,
) -> str:
    """Store records in the outbox in one transaction; returns the sync request id.

    Only what this commits may be acknowledged: the caller answers after it returns. A record
    id the namespace already gave another patient raises store.PatientMismatchError. The
    patients' stored signals follow in the same transaction (signal_rules: the clinic's rules;
    None: the shipped ones).
    """
    items = accept_items(namespace, records, per_patient=per_patient)
    with sessions.begin() as session:
        request_id = store.accept(session, namespace, items)
        on_accepted(session, items, records, signal_rules)
        return request_id

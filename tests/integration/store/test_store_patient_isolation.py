"""A record id belongs to one patient forever, and every read takes the caller's patients.

Two patients (A, B) of one client; on SQLite and PostgreSQL. Before the patient was part of the
ledger key, accept() gave B's row to A (the takeover) and reads answered any patient's row.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from service.store import (
    AcceptItem,
    AmbiguousRecordError,
    Disposition,
    PatientMismatchError,
    Patients,
    accept,
    claim_batch,
    get_entry,
    get_request,
    mark_sent,
    request_retraction,
)
from service.store.values import ResourceState

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
NS = "mg-diary-app"
A, B = "Patient/synthetic-a", "Patient/synthetic-b"
ALL = Patients.every()

Factory = sessionmaker[Session]


def item(patient: str, fatigue: int, *, per_patient: bool, source_id: str = "E1") -> AcceptItem:
    return AcceptItem(
        namespace=NS,
        kind="diary-entry",
        source_id=source_id,
        patient_key=patient,
        record={"entry_id": source_id, "patient": patient, "fatigue": fatigue},
        per_patient=per_patient,
    )


def accept_now(factory: Factory, *items: AcceptItem) -> str:
    with factory.begin() as session:
        return accept(session, NS, list(items), now=T0)


def deliver_all(factory: Factory) -> None:
    """Mark every queued entry sent with one Observation, as a worker would."""
    with factory.begin() as session:
        claimed = claim_batch(session, "w", 10, 60, now=T0)
    for n, entry in enumerate(claimed):
        state = ResourceState("Observation", "sys", f"v-{entry.ledger_id}", f"srv-{n}", "1")
        with factory.begin() as session:
            mark_sent(session, entry, [state], now=T0)


def test_patient_bound_senders_with_one_id_get_separate_records(factory: Factory) -> None:
    accept_now(factory, item(B, 9, per_patient=True))
    deliver_all(factory)
    with factory.begin() as session:
        before_b = get_entry(session, NS, "diary-entry", "E1", patients=Patients.only(B))
    accept_now(factory, item(A, 1, per_patient=True))  # A reuses B's id

    with factory.begin() as session:
        b = get_entry(session, NS, "diary-entry", "E1", patients=Patients.only(B))
        a = get_entry(session, NS, "diary-entry", "E1", patients=Patients.only(A))
    assert b is not None and a is not None and before_b is not None
    assert b.ledger_id != a.ledger_id
    # B's record is exactly as it was: patient, content, state, server resources.
    assert (b.patient_key, b.record, b.status, b.resources) == (
        B,
        before_b.record,
        "sent",
        before_b.resources,
    )
    assert (a.patient_key, a.record["fatigue"], a.status, a.resources) == (A, 1, "queued", ())


def test_an_unbound_sender_reusing_an_id_for_another_patient_is_refused(
    factory: Factory,
) -> None:
    accept_now(factory, item(B, 9, per_patient=False))
    with pytest.raises(PatientMismatchError) as raised:
        accept_now(factory, item(A, 1, per_patient=False))
    assert "synthetic" not in str(raised.value)  # names the record, not a patient
    with factory.begin() as session:
        b = get_entry(session, NS, "diary-entry", "E1", patients=ALL)
        a = get_entry(session, NS, "diary-entry", "E1", patients=Patients.only(A))
    assert b is not None and (b.patient_key, b.record["fatigue"]) == (B, 9)
    assert a is None


def test_a_record_is_found_again_by_either_kind_of_sender_of_its_patient(
    factory: Factory,
) -> None:
    first = item(A, 4, per_patient=True)
    accept_now(factory, first)
    again = accept_now(factory, item(A, 4, per_patient=False))  # the app's backend, same record
    legacy = item(B, 5, per_patient=False, source_id="E2")
    accept_now(factory, legacy)
    b_again = accept_now(factory, item(B, 5, per_patient=True, source_id="E2"))
    with factory.begin() as session:
        progress = get_request(session, again, client_id=NS, patients=ALL)
        b_progress = get_request(session, b_again, client_id=NS, patients=ALL)
    assert progress is not None and b_progress is not None
    assert [i.disposition for i in progress.items] == [Disposition.UNCHANGED]
    assert [i.disposition for i in b_progress.items] == [Disposition.UNCHANGED]


def test_reads_answer_only_the_callers_patients(factory: Factory) -> None:
    request_b = accept_now(factory, item(B, 9, per_patient=True))
    request_ab = accept_now(
        factory, item(A, 1, per_patient=False, source_id="E7"), item(B, 2, per_patient=False)
    )
    with factory.begin() as session:
        assert get_request(session, request_b, client_id=NS, patients=Patients.only(A)) is None
        assert get_request(session, request_b, client_id="other", patients=ALL) is None
        mixed = get_request(session, request_ab, client_id=NS, patients=Patients.only(A))
        whole = get_request(session, request_ab, client_id=NS, patients=ALL)
        assert (
            request_retraction(session, NS, "diary-entry", "E1", patients=Patients.only(A)) is None
        )
    assert mixed is not None and whole is not None
    assert [i.source_id for i in mixed.items] == ["E7"]
    assert mixed.item_count == 1 and mixed.counts == {"queued": 1}
    assert sorted(i.source_id for i in whole.items) == ["E1", "E7"]
    with factory.begin() as session:
        b = get_entry(session, NS, "diary-entry", "E1", patients=Patients.only(B))
    assert b is not None and b.status == "queued" and b.resources == ()


def test_a_shared_id_read_without_a_patient_is_ambiguous_for_an_unbound_caller(
    factory: Factory,
) -> None:
    accept_now(factory, item(A, 1, per_patient=True))
    accept_now(factory, item(B, 2, per_patient=True))
    with factory.begin() as session:
        with pytest.raises(AmbiguousRecordError):
            get_entry(session, NS, "diary-entry", "E1", patients=ALL)
        chosen = get_entry(session, NS, "diary-entry", "E1", patients=ALL, patient=B)
        own = get_entry(session, NS, "diary-entry", "E1", patients=Patients.only(A))
    assert chosen is not None and chosen.record["fatigue"] == 2
    assert own is not None and own.record["fatigue"] == 1

"""Stored signals follow accepted records (SQLite and PostgreSQL): a danger sign opens when its
entry is accepted and resolves at a later one, per patient, equal to evaluating the whole
history; a withdrawn record or a failed evaluation leaves the state stale, never the records
unaccepted; upgrading a populated 0005 database fills the new tables."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mappings.records import PatientRef
from mappings.signals import default_rules
from service import store
from service.signals import evaluate_patient, patient_signals
from service.signals.state import on_retracted
from service.store import make_engine, make_session_factory, upgrade
from service.store.models import SignalInput, SignalState
from service.sync.accept import accept_items, accept_records
from tests.unit.mappings.signal_courses import bulbar_flare, entry, stable

APP = "signal-state-app"
ONE = PatientRef(reference="Patient/synthetic-state-1")
TWO = PatientRef(reference="Patient/synthetic-state-2")
RULES = default_rules()
ONE_ONLY = store.Patients.only(str(ONE.reference))


def _active(sessions: sessionmaker[Session], patient: PatientRef) -> list[str]:
    return [
        s.signal.rule.id
        for s in patient_signals(sessions, str(patient.reference), RULES)
        if s.signal.active
    ]


def _stored(sessions: sessionmaker[Session], patient: PatientRef) -> list[str]:
    with sessions.begin() as session:
        rows = session.scalars(
            select(SignalState.rules_fingerprint).where(
                SignalState.patient_key == patient.reference
            )
        ).all()
    return list(rows)


def test_accepting_opens_a_danger_sign_and_a_later_entry_resolves_it(
    factory: sessionmaker[Session],
) -> None:
    accept_records(factory, APP, stable(30, patient=ONE))
    assert _stored(factory, ONE) == [RULES.fingerprint()]  # stored, current
    assert _active(factory, ONE) == []

    danger = entry(30.5, 6, breathing=2, swallowing=2, patient=ONE)
    accept_records(factory, APP, [danger])
    assert _active(factory, ONE) == ["danger_sign"]

    accept_records(factory, APP, [entry(31.5, 3, patient=ONE)])
    (sign,) = [
        s.signal
        for s in patient_signals(factory, str(ONE.reference), RULES)
        if s.signal.rule.id == "danger_sign"
    ]
    assert (sign.status, sign.resolved_by) == ("resolved", "diary-entry/D-31.5")
    assert sign.key == "danger_sign:diary-entry:D-30.5"  # the same signal, now resolved
    assert patient_signals(factory, str(ONE.reference), RULES) == evaluate_patient(
        factory, str(ONE.reference), RULES
    )


def test_two_patients_of_one_app_keep_their_own_signals(factory: sessionmaker[Session]) -> None:
    # Both patient-bound, numbering their entries alike (D-0.5, D-1.5, ...).
    accept_records(factory, APP, bulbar_flare(ONE), per_patient=True)
    accept_records(factory, APP, stable(28, patient=TWO), per_patient=True)
    assert _active(factory, ONE) == ["danger_sign", "worsening"]
    assert _active(factory, TWO) == []
    # A calm entry of patient two with patient one's newest id does not resolve one's signal.
    accept_records(factory, APP, [entry(24.5, 3, patient=TWO)], per_patient=True)
    assert _active(factory, ONE) == ["danger_sign", "worsening"]
    for patient in (ONE, TWO):
        found = patient_signals(factory, str(patient.reference), RULES)
        assert all(s.signal.patient == patient for s in found)
        assert found == evaluate_patient(factory, str(patient.reference), RULES)
    assert patient_signals(factory, "Patient/synthetic-state-nobody", RULES) == []


def test_a_withdrawn_record_makes_the_state_stale_and_readers_evaluate(
    factory: sessionmaker[Session],
) -> None:
    accept_records(
        factory, APP, [*stable(20, patient=ONE), entry(20.5, 6, breathing=3, patient=ONE)]
    )
    assert _active(factory, ONE) == ["danger_sign"]
    with factory.begin() as session:
        view = store.request_retraction(
            session, APP, "diary-entry", "D-20.5", patients=ONE_ONLY, patient=ONE.reference
        )
        assert view is not None
        on_retracted(session, view.patient_key)
    assert _stored(factory, ONE) == [""]
    assert _active(factory, ONE) == []  # evaluated without the withdrawn entry
    accept_records(factory, APP, [entry(21.5, 3, patient=ONE)])
    assert _stored(factory, ONE) == [RULES.fingerprint()]  # the next accept stores it again
    assert _active(factory, ONE) == []


def test_a_failing_evaluation_still_accepts_the_records(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    accept_records(factory, APP, stable(20, patient=ONE))

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("synthetic failure")

    monkeypatch.setattr("service.signals.state.evaluate_window", broken)
    accept_records(factory, APP, [entry(20.5, 6, breathing=3, patient=ONE)])
    with factory.begin() as session:
        found = store.get_entry(session, APP, "diary-entry", "D-20.5", patients=ONE_ONLY)
        assert found is not None
    assert _stored(factory, ONE) == [""]
    assert _active(factory, ONE) == ["danger_sign"]  # readers evaluate the stale state


def test_upgrading_a_populated_database_fills_the_signal_tables(database_url: str) -> None:
    upgrade(database_url, "0005_request_item_outcome")
    engine = make_engine(database_url)
    try:
        sessions = make_session_factory(engine)
        records = bulbar_flare(ONE)
        with sessions.begin() as session:  # as the 0005 release accepted them: no signals
            store.accept(session, APP, accept_items(APP, records))
        upgrade(database_url)
        with sessions.begin() as session:
            assert session.scalar(select(func.count()).select_from(SignalInput)) == len(records)
        assert _stored(sessions, ONE) == [""]  # stale: evaluated from the whole history
        assert _active(sessions, ONE) == ["danger_sign", "worsening"]
        later = replace(entry(24.5, 8, breathing=2, patient=ONE), entry_id="after-upgrade")
        accept_records(sessions, APP, [later])
        assert _stored(sessions, ONE) == [RULES.fingerprint()]
        assert patient_signals(sessions, str(ONE.reference), RULES) == evaluate_patient(
            sessions, str(ONE.reference), RULES
        )
    finally:
        engine.dispose()


def test_concurrent_first_accepts_of_one_patient_store_every_record(
    factory: sessionmaker[Session],
) -> None:
    import threading

    course = bulbar_flare(ONE)
    halves = [course[::2], course[1::2]]  # both start with no stored state for the patient
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def send(records: list) -> None:
        try:
            start.wait()
            accept_records(factory, APP, records)
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(h,)) for h in halves]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert _stored(factory, ONE) == [RULES.fingerprint()]
    assert patient_signals(factory, str(ONE.reference), RULES) == evaluate_patient(
        factory, str(ONE.reference), RULES
    )

"""Sync requests for a caller: accept and push now, retract, progress, one entry, operator tools.

The views of POST/GET/DELETE /sync/* call these with the caller and plain values; every ledger
read takes the caller's patients, and "not yours" is the same NoSuchSyncItem as "not there".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from mappings.records import DiaryEntry, Record
from service import store
from service.security import Principal, parse_patient_key
from service.signals.state import on_retracted
from service.sync.accept import accept_records
from service.sync.outcomes import RecordOutcome, request_outcomes
from service.sync.runtime import SyncRuntime


class NoSuchSyncItem(LookupError):
    """No such sync request or ledger entry for this caller (or another patient's)."""


class BadPatientParameter(ValueError):
    """?patient= is neither Patient/<id> nor system|value."""

    field = "patient"


def _patient_key(value: str | None) -> str | None:
    """?patient=: which patient's record, where several patients of an app share an id."""
    if value is None:
        return None
    try:
        return parse_patient_key(value)
    except ValueError:
        raise BadPatientParameter("must be Patient/<id> or system|value") from None


@dataclass(frozen=True)
class RecordResult:
    """One record of a request pushed now, and the server's words on it, if it refused it.

    `live` is this push's error with its (cleaned) diagnostics: held for this answer only,
    since the ledger keeps none.
    """

    outcome: RecordOutcome
    live: store.ErrorInfo | None


@dataclass(frozen=True)
class SyncAnswer:
    """An accepted request: its id, and each record's result when it was pushed now."""

    request_id: str
    accepted: int
    results: list[RecordResult] | None  # None: left to the worker (asynchronous)


def visible_patients(caller: Principal) -> store.Patients:
    """Whose records the caller may see in the ledger: its own patient, or (unbound) all."""
    return store.Patients.every() if caller.patient is None else store.Patients.only(caller.patient)


def _source_id(record: Record) -> str:
    return record.entry_id if isinstance(record, DiaryEntry) else record.infusion_id


def sync_records(
    runtime: SyncRuntime,
    caller: Principal,
    records: Sequence[Record],
    *,
    push_now: bool,
    budget: float,
    trace_id: str | None = None,
) -> SyncAnswer:
    """Store records in the outbox (committed), then push them within `budget` if asked to.

    What is not delivered within the budget stays queued for the worker. Outcomes are read
    back in one query, not taken from this push: another worker may have delivered some.
    """
    # A patient-bound caller's ids are its patient's own; an unbound one's are the app's.
    per_patient = caller.patient is not None
    request_id = accept_records(
        runtime.sessions,
        caller.client_id,
        records,
        per_patient=per_patient,
        signal_rules=runtime.signal_rules,
    )
    if not push_now or not runtime.fhir.base_url:
        return SyncAnswer(request_id, len(records), None)
    drained = runtime.worker(request_id=trace_id).drain(request_id=request_id, budget=budget)
    live = {d.entry.source_id: d.error for d in drained}
    by_id = {r.source_id: r for r in request_outcomes(runtime.sessions, request_id)}
    results = [RecordResult(by_id[_source_id(r)], live.get(_source_id(r))) for r in records]
    return SyncAnswer(request_id, len(records), results)


def retract(
    sessions: sessionmaker[Session],
    caller: Principal,
    kind: str,
    resource_type: str,
    source_id: str,
    patient: str | None = None,
) -> store.EntryView:
    """Queue the withdrawal (entered-in-error) of a record's resources; committed on return.

    The scope is checked first on the caller's own patient (whether the record exists must not
    decide between 403 and 404), then on the record's patient before anything is committed.
    """
    caller.require("write", resource_type, caller.patient)
    patient = _patient_key(patient)
    with sessions.begin() as session:
        view = store.request_retraction(
            session,
            caller.client_id,
            kind,
            source_id,
            patients=visible_patients(caller),
            patient=patient,
        )
        if view is None:
            raise NoSuchSyncItem(source_id)
        caller.require("write", resource_type, view.patient_key)  # refused: rolled back
        on_retracted(session, view.patient_key)  # its stored signals are evaluated again
    return view


def request_progress(
    sessions: sessionmaker[Session], caller: Principal, request_id: str
) -> store.RequestProgress:
    """Progress of a request: only the client that sent it, and only its patients' items."""
    with sessions.begin() as session:
        progress = store.get_request(
            session, request_id, client_id=caller.client_id, patients=visible_patients(caller)
        )
    if progress is None:
        raise NoSuchSyncItem(request_id)
    return progress


def ledger_entry(
    sessions: sessionmaker[Session],
    caller: Principal,
    namespace: str,
    kind: str,
    resource_type: str,
    source_id: str,
    patient: str | None = None,
) -> store.EntryView:
    """One ledger entry the caller may read (its scope checked first on its own patient)."""
    caller.require("read", resource_type, caller.patient)
    patient = _patient_key(patient)
    with sessions.begin() as session:
        view = store.get_entry(
            session,
            namespace,
            kind,
            source_id,
            patients=visible_patients(caller),
            patient=patient,
        )
    if view is None:
        raise NoSuchSyncItem(source_id)
    caller.require("read", resource_type, view.patient_key)
    return view


def outbox_status(sessions: sessionmaker[Session]) -> store.StatusCounts:
    """Counts by state, how many are in flight, and the oldest queued age."""
    with sessions.begin() as session:
        return store.status_counts(session)


def requeue(sessions: sessionmaker[Session], *, include_conflicts: bool) -> int:
    """Queue failed entries (and, if asked, conflicts) again; returns how many."""
    with sessions.begin() as session:
        return store.requeue_failed(session, include_conflicts=include_conflicts)

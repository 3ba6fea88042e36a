"""Keep each patient's stored signals current as records are accepted (the accept use case's hook).

Runs in the accept transaction, once per patient and app per accepted batch: note when the
records happened, lock the patient's stored signals, read only the window of records the new
ones can change (one query) and evaluate it with the pure mappings.signals.window; a stale or
missing state, or a closed infusion cycle, evaluates the app's whole history for the patient.
A failed evaluation never fails the accept: the state is marked stale and readers evaluate.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from mappings.records import Record
from mappings.signals import (
    RuleSet,
    Signal,
    closes_a_cycle,
    default_rules,
    evaluate,
    evaluate_window,
    plan_window,
    record_time,
    state_from_text,
    state_to_text,
)
from service.signals import cached, one_patient, parsed, remember
from service.store.clock import utcnow
from service.store.signals import (
    STALE,
    StoredRecord,
    create_state,
    lock_states,
    mark_stale,
    note_times,
    patient_records,
    records_by_id,
    save_states,
    window_heads,
)
from service.store.values import AcceptItem

log = logging.getLogger(__name__)
_States = dict[str, tuple[str, str]]  # id space -> (rules fingerprint, signals JSON text)


def on_accepted(
    session: Session,
    items: Sequence[AcceptItem],
    records: Sequence[Record],
    rules: RuleSet | None = None,
) -> None:
    """Update the stored signals of the patients of accepted records (items[i] is records[i])."""
    rules = rules or default_rules()
    note_times(
        session,
        [
            {
                "patient_key": item.patient_key,
                "namespace": item.namespace,
                "kind": item.kind,
                "source_id": item.source_id,
                "at": record_time(record),
            }
            for item, record in zip(items, records, strict=True)
        ],
    )
    by_source: dict[tuple[str, str], dict[tuple[str, str], Record]] = defaultdict(dict)
    scopes: dict[tuple[str, str], str] = {}
    for item, record in zip(items, records, strict=True):
        by_source[(item.patient_key, item.namespace)][(item.kind, item.source_id)] = record
        scopes[(item.patient_key, item.namespace)] = item.patient_key if item.per_patient else ""
    now = utcnow()
    for (patient_key, namespace), accepted in sorted(by_source.items()):
        states = lock_states(session, patient_key, namespace)
        if not states:
            # The patient's first records from this app: a row to lock first, so a concurrent
            # accept waits for this one and then evaluates with its records (PostgreSQL).
            scope = scopes[(patient_key, namespace)]
            create_state(session, patient_key, namespace, scope, now)
            states = lock_states(session, patient_key, namespace)
        try:
            changed = _evaluate(session, patient_key, namespace, accepted, states, rules)
        except SQLAlchemyError:
            raise  # the database failed the transaction: the accept fails as it would anyway
        except Exception as exc:  # signals must never cost the records: readers evaluate
            log.warning("signals not evaluated on accept: %s", type(exc).__name__)
            mark_stale(session, [patient_key], now)
            continue
        save_states(session, patient_key, namespace, changed, now)


def on_retracted(session: Session, patient_key: str) -> None:
    """A record of the patient is withdrawn: its stored signals are evaluated again (readers
    evaluate on demand until the next accepted record stores them)."""
    mark_stale(session, [patient_key], utcnow())


def _records(
    rows: Sequence[StoredRecord], accepted: dict[tuple[str, str], Record]
) -> dict[str, list[Record]]:
    # The accepted records are at hand: only the others are parsed (or taken from the cache).
    by_scope: dict[str, list[Record]] = defaultdict(list)
    for row in rows:
        record = accepted.get((row.kind, row.source_id))
        by_scope[row.patient_scope].append(record if record is not None else parsed(row))
    return by_scope


def _window(
    session: Session,
    patient_key: str,
    namespace: str,
    start: datetime,
    accepted: dict[tuple[str, str], Record],
) -> tuple[dict[str, list[Record]], set[str]]:
    """The window's records by id space, and the id spaces holding accepted records: the
    accepted ones as given, the others from the cache, and only the few the cache lacks read
    with their JSON (a second query)."""
    heads = window_heads(session, patient_key, namespace, start)
    found: dict[tuple[str, str, str], Record] = {}
    missing: list[tuple[str, str]] = []
    touched: set[str] = set()
    for scope, kind, source_id, digest in heads:
        key = (namespace, scope, kind, source_id, digest)
        record = accepted.get((kind, source_id))
        if record is not None:
            remember(key, record)  # what the next batch's window reads again
            touched.add(scope)
        else:
            record = cached(key)
        if record is None:
            missing.append((kind, source_id))
        else:
            found[(scope, kind, source_id)] = record
    for row in records_by_id(session, patient_key, namespace, missing):
        found[(row.patient_scope, row.kind, row.source_id)] = parsed(row)
    by_scope: dict[str, list[Record]] = defaultdict(list)
    for (scope, _kind, _id), record in found.items():
        by_scope[scope].append(record)
    return by_scope, touched


def _evaluate(
    session: Session,
    patient_key: str,
    namespace: str,
    accepted: dict[tuple[str, str], Record],
    states: _States,
    rules: RuleSet,
) -> _States:
    fingerprint = rules.fingerprint()
    stored = {
        scope: state_from_text(text, rules)
        for scope, (fp, text) in states.items()
        if fp == fingerprint
    }
    new = list(accepted.values())
    # One window for the app's id spaces (almost always one): the widest any of them needs.
    window = plan_window([s for signals in stored.values() for s in signals], new, rules)
    if window is not None and len(stored) == len(states) and stored:
        by_scope, touched = _window(session, patient_key, namespace, window.start, accepted)
        out: _States = {}
        for scope, records in by_scope.items():
            if scope not in touched:
                continue  # nothing new in this id space
            if scope not in stored or closes_a_cycle(window, records, rules):
                return _whole(session, patient_key, namespace, accepted, states, rules)
            signals = evaluate_window(stored[scope], one_patient(records), window, rules)
            out[scope] = (fingerprint, _text(records, signals))
        return out
    return _whole(session, patient_key, namespace, accepted, states, rules)


def _whole(
    session: Session,
    patient_key: str,
    namespace: str,
    accepted: dict[tuple[str, str], Record],
    states: _States,
    rules: RuleSet,
) -> _States:
    """Every id space of the app for the patient, evaluated from its whole history."""
    by_scope = _records(patient_records(session, patient_key, namespace), accepted)
    fingerprint = rules.fingerprint()
    # An id space without current records (all withdrawn) holds no signals: current, empty.
    out: _States = {scope: (fingerprint, "{}") for scope in states if scope not in by_scope}
    for scope, records in by_scope.items():
        signals = evaluate(one_patient(records), rules)
        out[scope] = (fingerprint, _text(records, signals))
    return out


def _text(records: Sequence[Record], signals: Sequence[Signal]) -> str:
    return state_to_text(records[0].patient, signals)


__all__ = ["STALE", "on_accepted", "on_retracted"]

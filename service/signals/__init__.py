"""Signals for the care team: evaluate a patient's records from the ledger against the rules.

A use case between the API and the store/mappings: load the patient's current records (every
namespace that sent any), evaluate each namespace's history with the pure mappings.signals, and
hand back the signals. Signals are prompts for review by the care team, never sent to the patient.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session, sessionmaker

from mappings.records import Record
from mappings.signals import RuleSet, Signal, evaluate
from service.schemas import RecordKind
from service.schemas.loading import SCHEMAS
from service.store.signals import StoredRecord, patient_records

NOTICE = (
    "Signals are prompts for review by the care team, not diagnoses and not advice to the "
    "patient; nothing is sent to the patient."
)


@dataclass(frozen=True)
class PatientSignal:
    """A signal and the namespace (sending app) and id space whose records raised it."""

    namespace: str
    patient_scope: str  # the patient key when the app's record ids are per patient, else ""
    signal: Signal


def one_patient(records: list[Record]) -> list[Record]:
    """One patient's records all naming the patient alike (evaluate() checks that they do)."""
    # One patient key may be spelt two ways by an app ("Patient/1", "1"): evaluate() wants one.
    if not records:
        return records
    first = records[0].patient
    return [r if r.patient == first else replace(r, patient=first) for r in records]


# Parsed records by (namespace, kind, id, content hash): validating a patient's whole history
# with the API schemas on every evaluation is most of its cost, and a stored record's content
# never changes under the same hash. Records are frozen, so threads may share them.
_CACHE_LIMIT = 50_000
_cache: dict[tuple[str, str, str, str, str], Record] = {}
_cache_lock = threading.Lock()


def _parsed(item: StoredRecord) -> Record:
    key = (item.namespace, item.patient_scope, item.kind, item.source_id, item.content_hash)
    with _cache_lock:
        found = _cache.get(key)
    if found is not None:
        return found
    record: Record = SCHEMAS[RecordKind(item.kind)].load(item.record())
    with _cache_lock:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.pop(next(iter(_cache)))  # the oldest insertion: a plain bounded cache
        _cache[key] = record
    return record


def patient_signals(
    sessions: sessionmaker[Session], patient_key: str, rules: RuleSet
) -> list[PatientSignal]:
    """Every signal episode of one patient (active and resolved), oldest first."""
    with sessions.begin() as session:
        stored = patient_records(session, patient_key)
    # One history per app and id space: the records a signal points at share its identifiers.
    by_source: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for item in stored:
        by_source[(item.namespace, item.patient_scope)].append(_parsed(item))
    out = [
        PatientSignal(namespace, scope, signal)
        for (namespace, scope), records in sorted(by_source.items())
        for signal in evaluate(one_patient(records), rules)
    ]
    out.sort(key=lambda p: (p.signal.opened_at, p.signal.rule.id, p.namespace))
    return out

"""Signals for the care team: a patient's signals, as stored or evaluated from the ledger.

A use case between the API and the store/mappings. Accepting records keeps each patient's
stored signals current (service.signals.state, the accept hook); readers take the stored
signals of every app and id space of the patient's records, and evaluate on demand, with the
pure mappings.signals, the ones whose state is stale or missing. Signals are prompts for review
by the care team, never sent to the patient.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session, sessionmaker

from mappings.record_json import record_from_json
from mappings.records import Record, RecordKind
from mappings.signals import RuleSet, Signal, evaluate, state_from_text
from service.store.signals import StoredRecord, patient_records, patient_sources, patient_states

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


# Parsed records by (namespace, kind, id, content hash): reading a patient's whole history
# back from JSON on every evaluation is most of its cost, and a stored record's content
# never changes under the same hash. Records are frozen, so threads may share them.
_CACHE_LIMIT = 50_000
_cache: dict[tuple[str, str, str, str, str], Record] = {}
_cache_lock = threading.Lock()


CacheKey = tuple[str, str, str, str, str]  # namespace, id space, kind, id, content hash


def cached(key: CacheKey) -> Record | None:
    """The record parsed before under this key, if still held."""
    with _cache_lock:
        return _cache.get(key)


def remember(key: CacheKey, record: Record) -> None:
    """Hold a parsed record (the accept hook holds the records it was given)."""
    with _cache_lock:
        if key not in _cache and len(_cache) >= _CACHE_LIMIT:
            _cache.pop(next(iter(_cache)))  # the oldest insertion: a plain bounded cache
        _cache[key] = record


def parsed(item: StoredRecord) -> Record:
    """A stored record as a record (parsed once per content)."""
    key = (item.namespace, item.patient_scope, item.kind, item.source_id, item.content_hash)
    found = cached(key)
    if found is not None:
        return found
    record = record_from_json(RecordKind(item.kind), item.record())
    remember(key, record)
    return record


def _evaluated(
    stored: list[StoredRecord], rules: RuleSet, only: set[tuple[str, str]] | None = None
) -> list[PatientSignal]:
    # One history per app and id space: the records a signal points at share its identifiers.
    by_source: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for item in stored:
        source = (item.namespace, item.patient_scope)
        if only is None or source in only:
            by_source[source].append(parsed(item))
    return [
        PatientSignal(namespace, scope, signal)
        for (namespace, scope), records in sorted(by_source.items())
        for signal in evaluate(one_patient(records), rules)
    ]


def _ordered(found: list[PatientSignal]) -> list[PatientSignal]:
    found.sort(key=lambda p: (p.signal.opened_at, p.signal.rule.id, p.namespace))
    return found


def evaluate_patient(
    sessions: sessionmaker[Session], patient_key: str, rules: RuleSet
) -> list[PatientSignal]:
    """Every signal episode of one patient evaluated now from the whole history, oldest first."""
    with sessions.begin() as session:
        stored = patient_records(session, patient_key)
    return _ordered(_evaluated(stored, rules))


def patient_signals(
    sessions: sessionmaker[Session], patient_key: str, rules: RuleSet
) -> list[PatientSignal]:
    """Every signal episode of one patient (active and resolved), oldest first: as stored when
    the stored state is current, else evaluated from the whole history of that app."""
    fingerprint = rules.fingerprint()
    with sessions.begin() as session:
        sources = patient_sources(session, patient_key)
        states = patient_states(session, patient_key)
        stale = {s for s in sources if states.get(s, ("", ""))[0] != fingerprint}
        records = patient_records(session, patient_key) if stale else []
    out = _evaluated(records, rules, stale)
    for namespace, scope in sorted(sources - stale):
        text = states[(namespace, scope)][1]
        out.extend(PatientSignal(namespace, scope, s) for s in state_from_text(text, rules))
    return _ordered(out)

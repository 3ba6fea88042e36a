"""Signals for the care team: evaluate a patient's records from the ledger against the rules.

A use case between the API and the store/mappings: load the patient's current records (every
namespace that sent any), evaluate each namespace's history with the pure mappings.signals, and
hand back the signals. Signals are prompts for review by the care team, never sent to the patient.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session, sessionmaker

from mappings.records import Record
from mappings.signals import RuleSet, Signal, evaluate
from service.schemas import RecordKind
from service.schemas.loading import SCHEMAS
from service.store.signals import patient_records

NOTICE = (
    "Signals are prompts for review by the care team, not diagnoses and not advice to the "
    "patient; nothing is sent to the patient."
)


@dataclass(frozen=True)
class PatientSignal:
    """A signal and the namespace (sending app) whose records raised it."""

    namespace: str
    signal: Signal


def one_patient(records: list[Record]) -> list[Record]:
    """One patient's records all naming the patient alike (evaluate() checks that they do)."""
    # One patient key may be spelt two ways by an app ("Patient/1", "1"): evaluate() wants one.
    if not records:
        return records
    first = records[0].patient
    return [r if r.patient == first else replace(r, patient=first) for r in records]


def patient_signals(
    sessions: sessionmaker[Session], patient_key: str, rules: RuleSet
) -> list[PatientSignal]:
    """Every signal episode of one patient (active and resolved), oldest first."""
    with sessions.begin() as session:
        stored = patient_records(session, patient_key)
    by_namespace: dict[str, list[Record]] = defaultdict(list)
    for item in stored:
        by_namespace[item.namespace].append(SCHEMAS[RecordKind(item.kind)].load(item.record))
    out = [
        PatientSignal(namespace, signal)
        for namespace, records in sorted(by_namespace.items())
        for signal in evaluate(one_patient(records), rules)
    ]
    out.sort(key=lambda p: (p.signal.opened_at, p.signal.rule.id, p.namespace))
    return out

"""Signals as plain JSON for storing them, and back: the rule by id from the current rule set
(the stored state names the rules' fingerprint, so a changed rule set means stale state)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mappings.records import PatientRef
from mappings.signals.evaluate import Evidence, Signal
from mappings.signals.rules import RuleSet

Json = dict[str, Any]


def signal_to_json(signal: Signal) -> Json:
    """One signal as JSON (the patient is the stored row's, not repeated)."""
    return {
        "rule": signal.rule.id,
        "key": signal.key,
        "status": signal.status,
        "opened_at": signal.opened_at.isoformat(),
        "resolved_at": signal.resolved_at.isoformat() if signal.resolved_at else None,
        "resolved_by": signal.resolved_by,
        "evidence": [
            [e.kind, e.record_id, e.part, e.resource_type, e.at.isoformat()]
            for e in signal.evidence
        ],
    }


def signal_from_json(data: Json, patient: PatientRef, rules: RuleSet) -> Signal:
    """A stored signal again, with its rule from `rules` (KeyError: unknown rule id)."""
    resolved_at = data["resolved_at"]
    return Signal(
        rule=rules.get(data["rule"]),
        key=data["key"],
        patient=patient,
        status=data["status"],
        opened_at=datetime.fromisoformat(data["opened_at"]),
        resolved_at=datetime.fromisoformat(resolved_at) if resolved_at else None,
        resolved_by=data["resolved_by"],
        evidence=tuple(
            Evidence(kind, record_id, part, rtype, datetime.fromisoformat(at))
            for kind, record_id, part, rtype, at in data["evidence"]
        ),
    )


def state_to_text(patient: PatientRef, signals: Sequence[Signal]) -> str:
    """One patient's stored signals (from one app and id space) as compact JSON text."""
    body = {
        "patient": [patient.reference, patient.identifier_system, patient.identifier_value],
        "signals": [signal_to_json(s) for s in signals],
    }
    return json.dumps(body, separators=(",", ":"))


def state_from_text(text: str, rules: RuleSet) -> list[Signal]:
    """The stored signals again (an empty state holds none)."""
    body = json.loads(text)
    if not body or not body.get("signals"):
        return []
    patient = PatientRef(*body["patient"])
    return [signal_from_json(s, patient, rules) for s in body["signals"]]

"""GET /patients/{id}/signals: the care team's signals for one patient (active and recent)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

from flask import Blueprint, current_app, request
from marshmallow import RAISE, Schema, fields, validate

from mappings.signals import RuleSet
from service.api import audit
from service.api.context import patient_reference, require_patient_read
from service.api.sync import sessions
from service.signals import NOTICE, PatientSignal, patient_signals

bp = Blueprint("signals", __name__, url_prefix="/patients")


class SignalsQuerySchema(Schema):
    """Query of GET /patients/{id}/signals."""

    class Meta:
        unknown = RAISE

    # Resolved signals stay listed this many days after they resolved.
    recent_days = fields.Integer(load_default=30, validate=validate.Range(0, 3650))


def rules() -> RuleSet:
    """The clinic's rules, built from the settings at start-up."""
    configured: RuleSet = current_app.extensions["diarybridge.signal_rules"]
    return configured


def _view(item: PatientSignal) -> dict[str, Any]:
    s = item.signal
    return {
        "id": s.key,
        "namespace": item.namespace,
        "rule": s.rule.id,
        "title": s.rule.title,
        "text": s.rule.text,
        "severity": s.rule.severity,
        "alarm": s.rule.alarm,
        "status": s.status,
        "opened_at": s.opened_at.isoformat(),
        "resolved_at": s.resolved_at.isoformat() if s.resolved_at else None,
        "resolved_by": s.resolved_by,
        "source": s.rule.source,
        "evidence": [
            {
                "kind": e.kind,
                "id": e.record_id,
                "part": e.part,
                "resource_type": e.resource_type,
                "at": e.at.isoformat(),
            }
            for e in s.evidence
        ],
    }


@bp.get("/<patient>/signals")
def signals(patient: str) -> tuple[dict[str, Any], HTTPStatus]:
    """Active signals and those resolved in the last `recent_days`, each with its evidence."""
    reference = patient_reference(patient)
    # The same check as the patient's other data: another patient answers like an unknown one.
    require_patient_read(reference, "Flag")
    query = SignalsQuerySchema().load(request.args.to_dict())
    since = datetime.now(UTC) - timedelta(days=query["recent_days"])
    found = [
        item
        for item in patient_signals(sessions(), reference, rules())
        if item.signal.active or (item.signal.resolved_at and item.signal.resolved_at >= since)
    ]
    # Active first, then alarms before information, high severity first, newest first.
    rank = {"high": 0, "moderate": 1, "low": 2}
    found.sort(key=lambda i: i.signal.opened_at, reverse=True)
    found.sort(
        key=lambda i: (not i.signal.active, not i.signal.rule.alarm, rank[i.signal.rule.severity])
    )
    audit.note("read", "signal", [reference], len(found))
    return {
        "patient": reference,
        "notice": NOTICE,
        "signals": [_view(item) for item in found],
    }, HTTPStatus.OK

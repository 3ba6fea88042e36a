"""GET /patients/{id}/signals: the care team's signals for one patient (active and recent)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Blueprint, request
from marshmallow import RAISE, Schema, fields, validate

from service import wiring
from service.api import audit
from service.api.context import patient_reference, require_patient_read
from service.signals import NOTICE, PatientSignal
from service.signals.listing import care_team_signals

bp = Blueprint("signals", __name__, url_prefix="/patients")


class SignalsQuerySchema(Schema):
    """Query of GET /patients/{id}/signals."""

    class Meta:
        unknown = RAISE

    # Resolved signals stay listed this many days after they resolved.
    recent_days = fields.Integer(load_default=30, validate=validate.Range(0, 3650))


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
    found = care_team_signals(
        wiring.current().sessions, reference, wiring.current().signal_rules, query["recent_days"]
    )
    audit.note("read", "signal", [reference], len(found))
    return {
        "patient": reference,
        "notice": NOTICE,
        "signals": [_view(item) for item in found],
    }, HTTPStatus.OK

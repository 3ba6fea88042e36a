"""The care team's list of a patient's signals: active ones and those resolved lately."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from mappings.signals import RuleSet
from service.signals import PatientSignal, patient_signals

SEVERITY_RANK = {"high": 0, "moderate": 1, "low": 2}


def care_team_signals(
    sessions: sessionmaker[Session],
    patient_key: str,
    rules: RuleSet,
    recent_days: int,
    now: datetime | None = None,
) -> list[PatientSignal]:
    """Active signals and those resolved in the last `recent_days`, most pressing first.

    Active first, then alarms before information, high severity first, newest first.
    """
    since = (now or datetime.now(UTC)) - timedelta(days=recent_days)
    found = [
        item
        for item in patient_signals(sessions, patient_key, rules)
        if item.signal.active or (item.signal.resolved_at and item.signal.resolved_at >= since)
    ]
    found.sort(key=lambda i: i.signal.opened_at, reverse=True)
    found.sort(
        key=lambda i: (
            not i.signal.active,
            not i.signal.rule.alarm,
            SEVERITY_RANK[i.signal.rule.severity],
        )
    )
    return found

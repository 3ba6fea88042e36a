"""Whose is a resource the server holds: its subject, compared with a record's patient.

The pusher only ever changes, keeps or shows a server resource whose subject is the record's
patient: a server copy of another patient (a reused id, a lost ledger, an edit on the server)
is neither overwritten nor stored nor answered.
"""

from __future__ import annotations

from typing import Any

from service.security import patient_key

WITHHELD = "another patient's resource: not shown"


def subject_key(resource: dict[str, Any]) -> str | None:
    """The patient key of a resource's subject, or None when it names no patient we can read."""
    subject = resource.get("subject")
    if not isinstance(subject, dict):
        return None
    try:
        if isinstance(subject.get("reference"), str):
            return patient_key(reference=subject["reference"])
        ident = subject.get("identifier")
        if isinstance(ident, dict):
            system, value = ident.get("system"), ident.get("value")
            if isinstance(system, str) and isinstance(value, str):
                return patient_key(identifier_system=system, identifier_value=value)
    except ValueError:
        return None  # e.g. an absolute or non-Patient reference: not provably this patient
    return None


def is_patients(resource: dict[str, Any], patient: str) -> bool:
    """Whether the resource's subject is this patient (unreadable subjects are not)."""
    return subject_key(resource) == patient


def visible_conflict(conflict: dict[str, Any] | None, patient: str) -> dict[str, Any] | None:
    """A stored conflict with every server copy of another patient withheld.

    The pusher keeps none since it checks subjects, but a row stored before that may hold one.
    """
    if conflict is None:
        return None
    shown: dict[str, Any] = {}
    for name, copy in conflict.items():
        theirs = copy.get("theirs") if isinstance(copy, dict) else None
        if isinstance(theirs, dict) and not is_patients(theirs, patient):
            copy = {**copy, "theirs": None, "withheld": WITHHELD}
        shown[name] = copy
    return shown

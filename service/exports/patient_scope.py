"""Which exported resources are the job's patients': every one is checked, whatever the server did.

A server may ignore `patient` (the Bulk Data IG allows it; SEKMET does and says so only in the
manifest's error[]), a search may ignore an unknown parameter, and servers write references
relative or absolute. So each resource's patient references are made relative to the server's
base first, and a resource is kept only if its subject, and every other patient it names, is one
of the job's. What is dropped is counted (counts only, never ids or values) for the manifest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from service.fhir_client.references import is_foreign_reference, relative_reference

# Where our resource types name a patient (their patient-compartment parameters).
SUBJECT = "subject"


def _references(value: Any) -> Iterator[str]:
    if isinstance(value, dict) and isinstance(value.get("reference"), str):
        yield value["reference"]


def _performer_references(resource: dict[str, Any]) -> Iterator[str]:
    performers = resource.get("performer")
    for item in performers if isinstance(performers, list) else []:
        yield from _references(item)  # Observation.performer: a Reference
        if isinstance(item, dict):
            yield from _references(item.get("actor"))  # MedicationAdministration.performer.actor


@dataclass
class PatientScope:
    """The job's patients ('Patient/<id>') on the server at `base_url`, and what was dropped."""

    patients: frozenset[str]
    base_url: str
    not_job_patients: int = 0
    foreign_references: int = 0
    checked: int = 0

    def keeps(self, resource: dict[str, Any]) -> bool:
        """True if the resource is about the job's patients only; else counted and False."""
        self.checked += 1
        subjects = list(_references(resource.get(SUBJECT)))
        others = list(_performer_references(resource))
        if any(is_foreign_reference(r, self.base_url) for r in subjects) or any(
            is_foreign_reference(r, self.base_url) and "/Patient/" in r for r in others
        ):
            # Another server's patient: not provably ours, and never looked up there.
            self.foreign_references += 1
            return False
        subject = relative_reference(subjects[0], self.base_url) if subjects else None
        named = {relative_reference(r, self.base_url) for r in others}
        patients = {r for r in named if r is not None and r.startswith("Patient/")}
        if subject not in self.patients or not patients <= self.patients:
            self.not_job_patients += 1
            return False
        return True

    @property
    def dropped(self) -> int:
        """Resources left out, for any reason."""
        return self.not_job_patients + self.foreign_references

    def counts(self) -> dict[str, int]:
        """The manifest's account of what was left out (counts only)."""
        return {
            "checked": self.checked,
            "notJobPatients": self.not_job_patients,
            "foreignReferences": self.foreign_references,
        }


def scope_for(patient: str | None, base_url: str) -> PatientScope | None:
    """The scope of a job for one patient; None for a system export of every patient."""
    return PatientScope(frozenset({patient}), base_url) if patient is not None else None

"""Fakes and synthetic FHIR JSON for the FHIR client unit tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BASE = "https://fhir.clinic.test/fhir"


@dataclass
class FakeTime:
    """A clock that only moves when the client sleeps, so tests never wait."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def outcome(
    code: str, diagnostics: str, expression: list[str] | None = None, severity: str = "error"
) -> dict[str, Any]:
    """An OperationOutcome body with one issue."""
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression is not None:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def observation(resource_id: str | None = "obs-1") -> dict[str, Any]:
    """A minimal synthetic Observation."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "synthetic"},
    }
    if resource_id is not None:
        resource["id"] = resource_id
    return resource


def capability_statement(
    fhir_version: str = "4.0.1",
    *,
    system: tuple[str, ...] = ("transaction", "batch"),
    resources: list[dict[str, Any]] | None = None,
    operations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A CapabilityStatement as a server would publish it."""
    if resources is None:
        resources = [
            {
                "type": "Observation",
                "interaction": [{"code": c} for c in ("read", "create", "update", "search-type")],
                "updateCreate": True,
                "conditionalCreate": True,
                "conditionalUpdate": True,
            }
        ]
    rest: dict[str, Any] = {
        "mode": "server",
        "resource": resources,
        "interaction": [{"code": c} for c in system],
    }
    if operations is not None:
        rest["operation"] = operations
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "kind": "instance",
        "fhirVersion": fhir_version,
        "format": ["json"],
        "software": {"name": "TestServer", "version": "1.2"},
        "rest": [rest],
    }

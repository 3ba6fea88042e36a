"""Every golden R4 Bundle checked by a second, independent R4 validator: fhirkit (Rust, generated
from the official R4 4.0.1 definitions), not the fhir.resources R4B models we validate with.

What it checks: every element name and cardinality, datatypes and primitive formats, one choice
of value[x], of plain R4 (an R4B/R5-only element is an error). What it does not: required
bindings (`status: "bogus"` passes it), id patterns and calendar dates (2026-11-31 passes), so
it complements, not replaces, our own checks of those before sending.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import fhirkit
import pytest

GOLDEN = Path(__file__).parent
R4_BUNDLES = sorted(GOLDEN.glob("*.R4.bundle.json"))


def errors(resource: dict[str, Any]) -> list[str]:
    """The validator's error texts (its issues say 'error at <path>: ...')."""
    return [str(issue) for issue in fhirkit.validate(resource) if str(issue).startswith("error")]


def test_there_are_golden_r4_bundles() -> None:
    assert len(R4_BUNDLES) >= 2


@pytest.mark.parametrize("path", R4_BUNDLES, ids=lambda p: p.name)
def test_every_golden_r4_bundle_has_no_error(path: Path) -> None:
    bundle = json.loads(path.read_text("utf-8"))
    assert errors(bundle) == []
    for entry in bundle["entry"]:  # each one alone too, so a failure names its resource
        assert errors(entry["resource"]) == [], entry["fullUrl"]


def _first(path: Path, resource_type: str) -> dict[str, Any]:
    bundle = json.loads(path.read_text("utf-8"))
    return next(
        copy.deepcopy(e["resource"])
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == resource_type
    )


@pytest.mark.parametrize(
    ("resource_type", "mutate", "where"),
    [
        # a time without its offset (FHIR requires one); note it takes Nov 31 as a date
        ("Observation", lambda r: r.update(effectiveDateTime="2026-11-03T20:30:00"),
         "Observation.effectiveDateTime"),
        ("Observation", lambda r: r.pop("code"), "Observation.code"),
        ("Observation", lambda r: r.update(valueString="x"), "Observation.value[x]"),
        # an R5-only element in R4 output
        ("MedicationAdministration", lambda r: r.update(occurenceDateTime="2026-11-03"),
         "MedicationAdministration.occurenceDateTime"),
        ("MedicationAdministration", lambda r: r.update(subject="Patient/x"),
         "MedicationAdministration.subject"),
    ],
)  # fmt: skip
def test_the_validator_rejects_a_broken_golden_resource(
    resource_type: str, mutate: Any, where: str
) -> None:
    resource = _first(GOLDEN / "ivig_two_days.R4.bundle.json", resource_type)
    assert errors(resource) == []
    mutate(resource)
    found = errors(resource)
    assert any(where in text for text in found), found

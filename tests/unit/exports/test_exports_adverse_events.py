"""AdverseEvents in a FHIR export: searched by subject, checked against the job's patient like
every other type, and left empty (not failed) where a server cannot search them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from export_fakes import BASE

from service.exports import export_request, run_export
from service.fhir_client import FhirClient, FhirServerError

CAPABILITY = {"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1", "rest": []}
MINE, OTHER = "Patient/p1", "Patient/p2"


def adverse_event(event_id: str, patient: str) -> dict[str, Any]:
    return {
        "resourceType": "AdverseEvent",
        "id": event_id,
        "actuality": "actual",
        "subject": {"reference": patient},
        "suspectEntity": [{"instance": {"reference": "MedicationAdministration/ma1"}}],
    }


def bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r} for r in resources],
    }


def export(fhir: FhirClient, out: Path, **params: Any) -> dict[str, Any]:
    return run_export(
        fhir,
        export_request({"format": "fhir", **params}),
        out,
        url_for=lambda name: f"https://diarybridge.test/files/{name}",
        requires_access_token=True,
        use_bulk=False,
    )


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_patients_export_keeps_only_that_patients_adverse_events(
    fhir: FhirClient, rsps: responses.RequestsMock, tmp_path: Path
) -> None:
    rsps.get(f"{BASE}/metadata", json=CAPABILITY)
    rsps.get(f"{BASE}/Observation", json=bundle([]))
    rsps.get(f"{BASE}/MedicationAdministration", json=bundle([]))
    # A lax server that ignores the filter and answers with another patient's event too.
    rsps.get(
        f"{BASE}/AdverseEvent",
        json=bundle([adverse_event("ae1", MINE), adverse_event("ae2", OTHER)]),
    )
    manifest = export(fhir, tmp_path, patient=MINE)
    (asked,) = [c.request.url for c in rsps.calls if "/AdverseEvent" in c.request.url]
    assert parse_qs(urlsplit(asked).query)["subject"] == [MINE]  # R4 has no `patient` on it
    assert [r["id"] for r in lines(tmp_path / "AdverseEvent.ndjson")] == ["ae1"]
    assert ("AdverseEvent", 1) in {(o["type"], o["count"]) for o in manifest["output"]}
    assert manifest["extension"]["patientCheck"]["notJobPatients"] == 1


def test_a_server_that_cannot_search_adverse_events_still_exports_the_rest(
    fhir: FhirClient, rsps: responses.RequestsMock, tmp_path: Path
) -> None:
    rsps.get(f"{BASE}/metadata", json=CAPABILITY)
    obs = {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"}}
    rsps.get(f"{BASE}/Observation", json=bundle([obs]))
    rsps.get(f"{BASE}/MedicationAdministration", json=bundle([]))
    rsps.get(f"{BASE}/AdverseEvent", status=400, json={"resourceType": "OperationOutcome"})
    export(fhir, tmp_path)
    assert [r["id"] for r in lines(tmp_path / "Observation.ndjson")] == ["o1"]
    assert (tmp_path / "AdverseEvent.ndjson").read_text() == ""


def test_a_bad_request_on_a_primary_type_still_fails_the_export(
    fhir: FhirClient, rsps: responses.RequestsMock, tmp_path: Path
) -> None:
    rsps.get(f"{BASE}/metadata", json=CAPABILITY)
    rsps.get(f"{BASE}/Observation", status=400, json={"resourceType": "OperationOutcome"})
    with pytest.raises(FhirServerError):
        export(fhir, tmp_path)

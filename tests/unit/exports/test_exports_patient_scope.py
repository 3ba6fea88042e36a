"""A patient's export holds that patient's resources only, whatever the server does with `patient`.

Against mocked servers that misbehave in the ways the Bulk Data IG allows (SEKMET's own answers
are proven in tests/integration/test_exports_sekmet.py): a kick-off refused under strict
handling, an export that says in error[] it ignored `patient`, and one that ignores it silently.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import responses
from export_fakes import BASE
from export_synthetic import resources
from test_exports_bulk_and_search_agree import capability, serve_search

from service.exports import export_request, run_export
from service.exports.patient_scope import PatientScope
from service.fhir_client import FhirClient

STATUS = f"{BASE}/bulkstatus/p-job"
A, B = "Patient/synthetic-export-0000", "Patient/synthetic-export-0001"


@pytest.fixture
def data() -> list[dict[str, Any]]:
    return resources(30, patients=2)  # half A's, half B's


def of(data: list[dict[str, Any]], patient: str, resource_type: str) -> list[dict[str, Any]]:
    return [
        r
        for r in data
        if r["resourceType"] == resource_type and r["subject"]["reference"] == patient
    ]


def serve_bulk_ignoring_patient(
    rsps: responses.RequestsMock, data: list[dict[str, Any]], error: list[dict[str, Any]]
) -> None:
    """Patient/$export that exports every patient, with `error` as its manifest's error[]."""
    rsps.post(
        f"{BASE}/Patient/$export", status=HTTPStatus.ACCEPTED, headers={"Content-Location": STATUS}
    )
    output = []
    for t in ("Observation", "MedicationAdministration"):
        url = f"{BASE}/files/{t}.ndjson"
        items = [r for r in data if r["resourceType"] == t]
        rsps.get(url, body="".join(json.dumps(r) + "\n" for r in items))
        output.append({"type": t, "url": url, "count": len(items)})
    errors = []
    for index, outcome in enumerate(error):
        url = f"{BASE}/files/error-{index}.ndjson"
        rsps.get(url, body=json.dumps(outcome) + "\n")
        errors.append({"type": "OperationOutcome", "url": url})
    manifest = {
        "transactionTime": "2026-11-27T10:00:00Z",
        "request": f"{BASE}/Patient/$export",
        "requiresAccessToken": True,
        "output": output,
        "error": errors,
    }
    rsps.get(STATUS, status=HTTPStatus.OK, json=manifest)
    rsps.delete(STATUS, status=HTTPStatus.ACCEPTED)


def outcome(code: str, text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "warning", "code": code, "diagnostics": text}],
    }


IGNORED = outcome("not-supported", "Ignored unsupported parameters: ['patient']")


def export_a(fhir: FhirClient, out: Path, fmt: str = "fhir") -> dict[str, Any]:
    request = export_request({"patient": A, "format": fmt})
    return run_export(fhir, request, out, url_for=str, requires_access_token=True, use_bulk=True)


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_the_scope_keeps_the_job_patients_relative_or_absolute_and_counts_the_rest() -> None:
    base = "http://127.0.0.1:8123/fhir"
    scope = PatientScope(frozenset({"Patient/a"}), base)

    def obs(subject: str | None, performer: str | None = None) -> dict[str, Any]:
        resource: dict[str, Any] = {"resourceType": "Observation"}
        if subject is not None:
            resource["subject"] = {"reference": subject}
        if performer is not None:
            resource["performer"] = [{"reference": performer}]
        return resource

    kept = [obs("Patient/a"), obs(f"{base}/Patient/a"), obs("Patient/a", "Practitioner/x")]
    assert all(scope.keeps(r) for r in kept)
    med = {
        "resourceType": "MedicationAdministration",
        "subject": {"reference": "Patient/a"},
        "performer": [{"actor": {"reference": f"{base}/Patient/b"}}],
    }
    others = [obs("Patient/b"), obs(f"{base}/Patient/b"), obs(None), obs("Patient/a", "Patient/b")]
    assert not any(scope.keeps(r) for r in [*others, med])
    foreign = [
        obs("http://elsewhere.example/fhir/Patient/a"),
        obs("Patient/a", "https://x/Patient/a"),
    ]
    assert not any(scope.keeps(r) for r in foreign)
    assert scope.counts() == {"checked": 10, "notJobPatients": 5, "foreignReferences": 2}


def test_kick_off_asks_strict_handling_and_a_refusal_falls_back_to_search(
    fhir: FhirClient, rsps: responses.RequestsMock, data: list[dict[str, Any]], tmp_path: Path
) -> None:
    rsps.post(
        f"{BASE}/Patient/$export",
        status=HTTPStatus.BAD_REQUEST,
        json=outcome("not-supported", "Unsupported parameters: ['patient']"),
    )
    serve_search(rsps, data, page=7)  # a search that ignores `patient` too: all come back
    manifest = export_a(fhir, tmp_path)

    kick = next(c.request for c in rsps.calls if "$export" in c.request.url)
    assert kick.headers["Prefer"] == "respond-async, handling=strict"
    for t in ("Observation", "MedicationAdministration"):
        assert read(tmp_path / f"{t}.ndjson") == of(data, A, t)
    dropped = len(of(data, B, "Observation")) + len(of(data, B, "MedicationAdministration"))
    assert dropped > 0
    assert manifest["extension"] == {
        "fetchedBy": "search",
        "patientCheck": {"checked": len(data), "notJobPatients": dropped, "foreignReferences": 0},
    }


def test_an_export_that_says_it_ignored_patient_is_not_used_and_search_is(
    fhir: FhirClient, rsps: responses.RequestsMock, data: list[dict[str, Any]], tmp_path: Path
) -> None:
    serve_bulk_ignoring_patient(rsps, data, [IGNORED])
    serve_search(rsps, of(data, A, "Observation") + of(data, A, "MedicationAdministration"), 50)
    manifest = export_a(fhir, tmp_path)

    urls = [(c.request.method, c.request.url) for c in rsps.calls]
    assert ("DELETE", STATUS) in urls  # the server's job is withdrawn
    assert not any("/files/Observation" in u for _, u in urls)  # its output never even read
    assert manifest["extension"]["fetchedBy"] == "search"
    assert manifest["extension"]["patientCheck"]["notJobPatients"] == 0
    assert manifest["error"] == []  # the ignored-parameter warning is not passed on as ours
    for t in ("Observation", "MedicationAdministration"):
        assert read(tmp_path / f"{t}.ndjson") == of(data, A, t)


@pytest.mark.parametrize("fmt", ["fhir", "records"])
def test_a_server_that_ignores_patient_silently_is_caught_resource_by_resource(
    fhir: FhirClient,
    rsps: responses.RequestsMock,
    data: list[dict[str, Any]],
    tmp_path: Path,
    fmt: str,
) -> None:
    # An error[] that is not about parameters is passed on, and the bulk output is used.
    other = outcome("processing", "1 resource could not be exported")
    serve_bulk_ignoring_patient(rsps, data, [other])
    manifest = export_a(fhir, tmp_path, fmt)

    assert manifest["extension"]["fetchedBy"] == "bulk"
    b_count = len(of(data, B, "Observation")) + len(of(data, B, "MedicationAdministration"))
    assert manifest["extension"]["patientCheck"] == {
        "checked": len(data),
        "notJobPatients": b_count,
        "foreignReferences": 0,
    }
    if fmt == "fhir":
        for t in ("Observation", "MedicationAdministration"):
            assert read(tmp_path / f"{t}.ndjson") == of(data, A, t)
        assert read(tmp_path / "OperationOutcome.ndjson") == [other]
    else:
        entries = read(tmp_path / "diary-entries.ndjson") + read(tmp_path / "infusions.ndjson")
        assert entries and {e["patient"]["reference"] for e in entries} == {A}
        assert read(tmp_path / "OperationOutcome.server.ndjson") == [other]


def test_a_system_export_without_patient_checks_nothing_and_says_how_it_fetched(
    fhir: FhirClient, rsps: responses.RequestsMock, data: list[dict[str, Any]], tmp_path: Path
) -> None:
    rsps.get(f"{BASE}/metadata", json=capability(False))
    serve_search(rsps, data, page=50)
    manifest = run_export(
        fhir, export_request({}), tmp_path, url_for=str, requires_access_token=True
    )
    assert manifest["extension"] == {"fetchedBy": "search"}
    assert len(read(tmp_path / "Observation.ndjson")) == len(
        [r for r in data if r["resourceType"] == "Observation"]
    )

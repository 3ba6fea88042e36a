"""An export by $export and one by paged search of the same server data give the same files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from export_fakes import BASE
from export_synthetic import records, resources
from fhir.resources.R4B import get_fhir_model_class

from service.exports import ExportFormat, export_request, run_export
from service.exports.fhir_source import search_params
from service.fhir_client import FhirClient
from service.schemas import dump_record

STATUS = f"{BASE}/bulkstatus/abc"
TYPES = ("Observation", "MedicationAdministration", "AdverseEvent")


def capability(with_export: bool) -> dict[str, Any]:
    rest: dict[str, Any] = {
        "mode": "server",
        "resource": [{"type": t, "interaction": [{"code": "search-type"}]} for t in TYPES],
    }
    if with_export:
        rest["operation"] = [
            {
                "name": "export",
                "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
            }
        ]
    return {"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1", "rest": [rest]}


def serve_search(rsps: responses.RequestsMock, data: list[dict[str, Any]], page: int) -> None:
    """Type searches paged by _offset, as the test server does."""

    def handler(resource_type: str) -> Callable[[Any], tuple[int, dict[str, str], str]]:
        matches = [r for r in data if r["resourceType"] == resource_type]

        def callback(request: Any) -> tuple[int, dict[str, str], str]:
            query = parse_qs(urlsplit(request.url).query)
            offset = int(query.get("_offset", ["0"])[0])
            chunk = matches[offset : offset + page]
            bundle: dict[str, Any] = {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": r, "search": {"mode": "match"}} for r in chunk],
                "link": [],
            }
            if offset + page < len(matches):
                bundle["link"].append(
                    {"relation": "next", "url": f"{BASE}/{resource_type}?_offset={offset + page}"}
                )
            return 200, {"Content-Type": "application/fhir+json"}, json.dumps(bundle)

        return callback

    for t in TYPES:
        rsps.add_callback(responses.GET, f"{BASE}/{t}", callback=handler(t))


def serve_bulk(rsps: responses.RequestsMock, data: list[dict[str, Any]]) -> None:
    """$export whose Observations come in two files, as big exports do."""
    rsps.get(f"{BASE}/$export", status=202, headers={"Content-Location": STATUS})
    rsps.get(STATUS, status=202, headers={"X-Progress": "working", "Retry-After": "0"})
    obs = [r for r in data if r["resourceType"] == "Observation"]
    meds = [r for r in data if r["resourceType"] == "MedicationAdministration"]
    files = {"obs-1": obs[: len(obs) // 2], "obs-2": obs[len(obs) // 2 :], "med-1": meds}
    output = []
    for name, items in files.items():
        url = f"{BASE}/files/{name}.ndjson"
        rsps.get(url, body="".join(json.dumps(r) + "\n" for r in items))
        output.append({"type": items[0]["resourceType"], "url": url, "count": len(items)})
    body = {
        "transactionTime": "2026-11-27T10:00:00Z",
        "request": f"{BASE}/$export",
        "requiresAccessToken": True,
        "output": output,
        "error": [],
    }
    rsps.get(STATUS, status=200, json=body)
    rsps.delete(STATUS, status=202)


def export(fhir: FhirClient, out: Path, fmt: str = "fhir") -> dict[str, Any]:
    return run_export(
        fhir,
        export_request({"format": fmt}),
        out,
        url_for=lambda name: f"https://diarybridge.test/files/{name}",
        requires_access_token=True,
    )


def lines(folder: Path, name: str) -> list[str]:
    return sorted((folder / name).read_text().splitlines())


@pytest.fixture
def data() -> list[dict[str, Any]]:
    return resources(60)


def test_bulk_and_search_write_the_same_valid_ndjson(
    fhir: FhirClient, rsps: responses.RequestsMock, data: list[dict[str, Any]], tmp_path: Path
) -> None:
    rsps.get(f"{BASE}/metadata", json=capability(True))
    serve_bulk(rsps, data)
    by_bulk = export(fhir, tmp_path / "bulk")
    assert any(c.request.url == STATUS and c.request.method == "DELETE" for c in rsps.calls)

    with FhirClient(BASE) as other:
        rsps.replace(responses.GET, f"{BASE}/metadata", json=capability(False))
        serve_search(rsps, data, page=25)
        by_search = export(other, tmp_path / "search")
    assert not any("$export" in c.request.url for c in rsps.calls[-20:])

    for t in TYPES:
        bulk_lines = lines(tmp_path / "bulk", f"{t}.ndjson")
        assert bulk_lines == lines(tmp_path / "search", f"{t}.ndjson")
        assert len(bulk_lines) == sum(1 for r in data if r["resourceType"] == t)
        for line in bulk_lines:
            get_fhir_model_class(t).model_validate_json(line)  # R4B: every line a valid resource
    counts = lambda m: {(o["type"], o["count"]) for o in m["output"]}  # noqa: E731
    assert counts(by_bulk) == counts(by_search)
    assert by_bulk["transactionTime"] == "2026-11-27T10:00:00Z"
    assert set(by_bulk) == {
        "transactionTime",
        "request",
        "requiresAccessToken",
        "output",
        "error",
        "extension",  # the IG's reserved field: how it was fetched
    }
    assert (by_bulk["extension"], by_search["extension"]) == (
        {"fetchedBy": "bulk"},
        {"fetchedBy": "search"},
    )
    on_disk = json.loads((tmp_path / "bulk" / "manifest.json").read_text())
    assert on_disk == by_bulk


def test_records_by_bulk_are_the_records_that_were_mapped(
    fhir: FhirClient, rsps: responses.RequestsMock, data: list[dict[str, Any]], tmp_path: Path
) -> None:
    rsps.get(f"{BASE}/metadata", json=capability(True))
    serve_bulk(rsps, data)
    manifest = export(fhir, tmp_path, "records")
    got = lines(tmp_path, "diary-entries.ndjson") + lines(tmp_path, "infusions.ndjson")
    want = sorted(json.dumps(dump_record(r), separators=(",", ":")) for r in records(60))
    assert sorted(got) == want
    assert {o["type"] for o in manifest["output"]} == {"diary-entry", "infusion"}
    assert manifest["error"] == []


def test_until_is_applied_to_bulk_output_as_search_would(
    fhir: FhirClient, rsps: responses.RequestsMock, tmp_path: Path
) -> None:
    data = resources(20)[:20]
    for i, resource in enumerate(data):
        resource["meta"] = {
            **resource.get("meta", {}),
            "lastUpdated": f"2026-02-{i + 1:02d}T00:00:00Z",
        }
    rsps.get(f"{BASE}/metadata", json=capability(True))
    serve_bulk(rsps, data)
    request = export_request({"until": "2026-02-06T00:00:00Z", "types": ["Observation"]})
    run_export(fhir, request, tmp_path, url_for=str, requires_access_token=True)
    kept = [json.loads(line) for line in lines(tmp_path, "Observation.ndjson")]
    assert {r["meta"]["lastUpdated"] for r in kept} == {
        f"2026-02-{d:02d}T00:00:00Z" for d in range(1, 6)
    }


def test_search_params_carry_patient_and_the_window() -> None:
    request = export_request(
        {
            "since": "2026-01-01T00:00:00+01:00",
            "until": "2026-02-01T00:00:00Z",
            "patient": "Patient/p1",
        }
    )
    assert search_params(request) == [
        ("patient", "Patient/p1"),
        ("_lastUpdated", "ge2025-12-31T23:00:00Z"),
        ("_lastUpdated", "lt2026-02-01T00:00:00Z"),
    ]
    assert request.format is ExportFormat.FHIR


def test_adverse_events_are_searched_by_subject() -> None:
    # R4 defines no `patient` search parameter on AdverseEvent; `subject` is the same patient.
    request = export_request({"patient": "Patient/p1"})
    assert search_params(request, "AdverseEvent") == [("subject", "Patient/p1")]
    assert search_params(request, "Observation") == [("patient", "Patient/p1")]

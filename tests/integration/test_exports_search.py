"""Exports against the real test FHIR server (Medplum's router), which offers no $export.

So these prove the paged-search path end to end: files, filters, records, CSV and the CLI. The
$export path is proven against SEKMET in test_exports_sekmet.py, and with `responses` in
tests/unit/exports for what a real server won't send.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from mappings import record_to_resources
from mappings.context import MappingContext
from mappings.records import DiaryEntry, PatientRef
from service.cli import main
from service.exports import export_request, run_export
from service.fhir_client import FhirClient
from service.schemas import dump_record
from tests.fhir_server import RunningServer, start_fhir_server
from tests.unit.exports.export_synthetic import batch_put, records, resources
from tests.unit.mappings.samples import INFUSION
from tests.unit.mappings.samples import ctx as sample_ctx

pytestmark = pytest.mark.integration

COUNT = 120  # records: about 850 resources, so search pages (1000) and grouping are exercised


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    # Its own server: an export without a patient reads everything, other tests' data included.
    running = start_fhir_server(persist=False)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def loaded(server: RunningServer) -> list[dict[str, Any]]:
    data = resources(COUNT)
    with FhirClient(server.base_url) as fhir:
        batch_put(fhir, data)
    return data


def without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k != "meta"} | {
        "meta": {
            k: v
            for k, v in resource.get("meta", {}).items()
            if k not in ("versionId", "lastUpdated")
        }
    }


def export(server: RunningServer, out: Path, **body: Any) -> dict[str, Any]:
    with FhirClient(server.base_url) as fhir:
        return run_export(fhir, export_request(body), out, url_for=str, requires_access_token=False)


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_test_server_offers_no_export_so_search_is_used(server: RunningServer) -> None:
    with FhirClient(server.base_url) as fhir:
        assert fhir.capabilities().export is False


def test_fhir_export_has_every_resource_once_each_line_valid_r4b(
    server: RunningServer, loaded: list[dict[str, Any]], tmp_path: Path
) -> None:
    manifest = export(server, tmp_path)
    for t in ("Observation", "MedicationAdministration"):
        got = read(tmp_path / f"{t}.ndjson")
        want = {r["id"]: r for r in loaded if r["resourceType"] == t}
        assert len(got) == len(want)  # no resource twice, none missing
        for line in (tmp_path / f"{t}.ndjson").read_text().splitlines():
            get_fhir_model_class(t).model_validate_json(line)
        for resource in got:
            assert without_meta(resource) == without_meta(want[resource["id"]])
        item = next(o for o in manifest["output"] if o["type"] == t)
        assert item["count"] == len(want)
        assert item["url"] == f"{t}.ndjson"


def test_since_and_patient_narrow_the_export(
    server: RunningServer, loaded: list[dict[str, Any]], tmp_path: Path
) -> None:
    time.sleep(0.01)
    since = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    # Another app's records: their own identifiers and ids, so they add rather than update.
    late = resources(3, seed=99, patients=1, ctx=MappingContext("synthetic-late-app", "urn:late"))
    with FhirClient(server.base_url) as fhir:
        batch_put(fhir, late)
    export(server, tmp_path / "since", since=since)
    got = read(tmp_path / "since" / "Observation.ndjson")
    assert {r["id"] for r in got} == {r["id"] for r in late if r["resourceType"] == "Observation"}

    patient = "Patient/synthetic-export-0002"
    export(server, tmp_path / "patient", patient=patient, types=["Observation"])
    got = read(tmp_path / "patient" / "Observation.ndjson")
    want = [
        r
        for r in loaded
        if r["resourceType"] == "Observation" and r["subject"]["reference"] == patient
    ]
    assert got and len(got) == len(want)
    assert {r["subject"]["reference"] for r in got} == {patient}


def test_records_export_gives_back_the_records_that_were_loaded(
    server: RunningServer, loaded: list[dict[str, Any]], tmp_path: Path
) -> None:
    manifest = export(server, tmp_path, format="records", until="2100-01-01T00:00:00Z")
    got = read(tmp_path / "diary-entries.ndjson") + read(tmp_path / "infusions.ndjson")
    assert manifest["error"] == []
    # Another test's app may have sent records with the same ids: compare whole records.
    got_json = {json.dumps(r, sort_keys=True) for r in got}
    for record in records(COUNT):
        assert json.dumps(dump_record(record), sort_keys=True) in got_json
    assert {o["type"] for o in manifest["output"]} == {"diary-entry", "infusion"}


def test_cli_writes_csv_and_a_manifest(
    server: RunningServer,
    loaded: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'unused.sqlite3'}")
    out = tmp_path / "csv"
    code = main(
        [
            "export",
            "--format",
            "csv",
            "--out",
            str(out),
            "--fhir-base-url",
            server.base_url,
            "--patient",
            "Patient/synthetic-export-0001",
        ]
    )
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert capsys.readouterr().out.strip() == str(out / "manifest.json")
    with (out / "diary-entries.csv").open(newline="") as source:
        rows = list(csv.DictReader(source))
    want = [
        r
        for r in records(COUNT)
        if isinstance(r, DiaryEntry) and r.patient.reference == "Patient/synthetic-export-0001"
    ]
    assert sorted(row["entry_id"] for row in rows) == sorted(e.entry_id for e in want)
    diary = next(o for o in manifest["output"] if o["type"] == "diary-entry")
    assert diary["count"] == len(want)
    assert diary["url"] == (out / "diary-entries.csv").as_uri()
    assert manifest["requiresAccessToken"] is False


def test_adverse_events_are_exported_searched_by_subject_for_the_patient_only(
    server: RunningServer, tmp_path: Path
) -> None:
    # An IVIG-flu reaction for each of two patients: each infusion gets one AdverseEvent.
    def reacted(patient: str) -> list[dict[str, Any]]:
        record = replace(
            INFUSION,
            infusion_id=f"ae-export-{patient}",
            patient=PatientRef(reference=f"Patient/{patient}"),
        )
        return record_to_resources(record, sample_ctx())

    mine, other = reacted("synthetic-ae-1"), reacted("synthetic-ae-2")
    with FhirClient(server.base_url) as fhir:
        batch_put(fhir, mine + other)
    (my_event,) = [r for r in mine if r["resourceType"] == "AdverseEvent"]

    export(server, tmp_path, patient="Patient/synthetic-ae-1", types=["AdverseEvent"])
    got = read(tmp_path / "AdverseEvent.ndjson")
    assert [r["id"] for r in got] == [my_event["id"]]
    assert without_meta(got[0]) == without_meta(my_event)
    get_fhir_model_class("AdverseEvent").model_validate(got[0])  # a valid R4B resource

"""The $export client against a real server with $export (SEKMET), beside paged search on Medplum.

Both servers get the same synthetic data; an export by SEKMET's $export and one by Medplum's
paged search must give the same files (lines sorted, server-assigned meta left out). SEKMET
ignores `patient` on Patient/$export (tests/sekmet_server/README.md), so the patient level also
proves that such an export is never used as it stands.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.exports import export_request, run_export
from service.exports.fhir_source import fetch_by_bulk
from service.exports.ndjson import TypeFiles, read_lines
from service.exports.patient_scope import PatientScope
from service.fhir_client import (
    BulkExportRefused,
    FhirClient,
    download,
    ignored_parameter_issues,
    kick_off,
    wait_for_manifest,
)
from service.schemas import dump_record
from tests.fhir_server import RunningServer, start_fhir_server
from tests.sekmet_server import SekmetServer, start_sekmet_server
from tests.unit.exports.export_synthetic import batch_put, records, resources

pytestmark = pytest.mark.integration

COUNT = 60  # records of 3 patients: about 430 resources
A, B = "Patient/synthetic-export-0000", "Patient/synthetic-export-0001"
TYPES = ("Observation", "MedicationAdministration")


@pytest.fixture(scope="module")
def data() -> list[dict[str, Any]]:
    return resources(COUNT, patients=3)


# Servers of this module's own: a system export reads everything, other tests' data included.
@pytest.fixture(scope="module")
def sekmet(
    tmp_path_factory: pytest.TempPathFactory, data: list[dict[str, Any]]
) -> Iterator[SekmetServer]:
    server = start_sekmet_server(data_dir=tmp_path_factory.mktemp("sekmet-exports"))
    with FhirClient(server.base_url) as fhir:
        batch_put(fhir, data)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sekmet_absolute(
    tmp_path_factory: pytest.TempPathFactory, data: list[dict[str, Any]]
) -> Iterator[SekmetServer]:
    server = start_sekmet_server(
        data_dir=tmp_path_factory.mktemp("sekmet-exports-abs"), absolute_references=True
    )
    with FhirClient(server.base_url) as fhir:
        batch_put(fhir, data)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def medplum(data: list[dict[str, Any]]) -> Iterator[RunningServer]:
    server = start_fhir_server(persist=False)
    with FhirClient(server.base_url) as fhir:
        batch_put(fhir, data)
    yield server
    server.stop()


def export(base_url: str, out: Path, **body: Any) -> dict[str, Any]:
    with FhirClient(base_url) as fhir:
        return run_export(fhir, export_request(body), out, url_for=str, requires_access_token=False)


SERVER_META = ("versionId", "lastUpdated")


def by_value(value: Any) -> Any:
    """JSON numbers by value: Medplum (JavaScript) writes a decimal 60.0 as 60, SEKMET as 60.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: by_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [by_value(v) for v in value]
    return value


def normalised(path: Path) -> list[str]:
    """The file's lines without server-assigned meta, sorted: what both servers must agree on."""
    if path.suffix == ".csv":
        head, *rows = path.read_text().splitlines()
        return [head, *sorted(rows)]
    out = []
    for item in read_lines(path):
        meta = {k: v for k, v in (item.get("meta") or {}).items() if k not in SERVER_META}
        item = {k: v for k, v in item.items() if k != "meta"} | ({"meta": meta} if meta else {})
        out.append(json.dumps(by_value(item), sort_keys=True))
    return sorted(out)


def of(data: list[dict[str, Any]], patient: str, resource_type: str) -> list[dict[str, Any]]:
    return [
        r
        for r in data
        if r["resourceType"] == resource_type and r["subject"]["reference"] == patient
    ]


def test_sekmet_offers_export_and_medplum_does_not(sekmet: SekmetServer, medplum: RunningServer):
    with FhirClient(sekmet.base_url) as fhir:
        assert fhir.capabilities().export is True
    with FhirClient(medplum.base_url) as fhir:
        assert fhir.capabilities().export is False


@pytest.mark.parametrize("fmt", ["fhir", "records", "csv"])
def test_system_export_by_bulk_on_sekmet_equals_paged_search_on_medplum(
    sekmet: SekmetServer,
    medplum: RunningServer,
    data: list[dict[str, Any]],
    tmp_path: Path,
    fmt: str,
) -> None:
    by_bulk = export(sekmet.base_url, tmp_path / "bulk", format=fmt)
    by_search = export(medplum.base_url, tmp_path / "search", format=fmt)
    assert by_bulk["extension"] == {"fetchedBy": "bulk"}
    assert by_search["extension"] == {"fetchedBy": "search"}
    assert by_bulk["request"].startswith(f"{sekmet.base_url}/$export")
    files = lambda m: {(o["type"], o["url"], o["count"]) for o in m["output"]}  # noqa: E731
    assert files(by_bulk) == files(by_search) and by_bulk["output"]
    assert by_bulk["error"] == by_search["error"] == []
    for _, name, _ in files(by_bulk):
        assert normalised(tmp_path / "bulk" / name) == normalised(tmp_path / "search" / name)
    if fmt == "fhir":
        for t in TYPES:
            want = sorted(
                json.dumps(by_value(r), sort_keys=True) for r in data if r["resourceType"] == t
            )
            assert normalised(tmp_path / "bulk" / f"{t}.ndjson") == want  # and both are the data


def test_patient_export_on_sekmet_equals_medplum_and_holds_only_that_patient(
    sekmet: SekmetServer, medplum: RunningServer, data: list[dict[str, Any]], tmp_path: Path
) -> None:
    by_sekmet = export(sekmet.base_url, tmp_path / "sekmet", patient=A)
    by_medplum = export(medplum.base_url, tmp_path / "medplum", patient=A)
    # SEKMET refuses `patient` under strict handling: the export is its paged search instead.
    assert by_sekmet["extension"]["fetchedBy"] == "search"
    for manifest in (by_sekmet, by_medplum):
        assert manifest["extension"]["patientCheck"]["notJobPatients"] == 0
    for t in TYPES:
        sekmet_lines = normalised(tmp_path / "sekmet" / f"{t}.ndjson")
        assert sekmet_lines == normalised(tmp_path / "medplum" / f"{t}.ndjson")
        assert sekmet_lines == sorted(
            json.dumps(by_value(r), sort_keys=True) for r in of(data, A, t)
        )


def test_sekmet_patient_export_refused_under_strict_handling(sekmet: SekmetServer) -> None:
    with FhirClient(sekmet.base_url) as fhir, pytest.raises(BulkExportRefused, match="400"):
        kick_off(fhir, types=TYPES, patient=A)


def test_sekmet_patient_export_without_strict_says_it_ignored_patient_and_is_not_used(
    sekmet: SekmetServer, tmp_path: Path
) -> None:
    with FhirClient(sekmet.base_url) as fhir:
        # The real protocol at patient level: POST Parameters, poll, the manifest's error[].
        status_url = kick_off(fhir, types=TYPES, patient=A, strict=False)
        manifest = wait_for_manifest(fhir, status_url, max_wait=60)
        [error] = manifest.error
        download(fhir, error.url, tmp_path / "error.ndjson", manifest)
        assert sum(map(ignored_parameter_issues, read_lines(tmp_path / "error.ndjson"))) == 1
        # ... so the export path refuses that output before writing a line of it.
        files = TypeFiles(tmp_path / "out")
        with pytest.raises(BulkExportRefused, match="ignored"):
            fetch_by_bulk(
                fhir,
                export_request({"patient": A}),
                files,
                tmp_path / "staging",
                strict=False,
            )
        assert files.counts == {}


def test_the_patient_check_keeps_exactly_that_patient_of_everyones_real_answers(
    sekmet_absolute: SekmetServer, data: list[dict[str, Any]], tmp_path: Path
) -> None:
    base = sekmet_absolute.base_url
    a_ids = {t: sorted(r["id"] for r in of(data, A, t)) for t in TYPES}
    others = len(data) - sum(len(ids) for ids in a_ids.values())
    with FhirClient(base) as fhir:
        # Everyone's resources by system $export (its NDJSON keeps references relative) ...
        manifest = wait_for_manifest(fhir, kick_off(fhir, types=TYPES), max_wait=60)
        by_bulk = PatientScope(frozenset({A}), base)
        kept: dict[str, list[str]] = {t: [] for t in TYPES}
        for index, item in enumerate(manifest.output):
            piece = tmp_path / f"{index}.ndjson"
            download(fhir, item.url, piece, manifest)
            kept[item.type] += [r["id"] for r in read_lines(piece) if by_bulk.keeps(r)]
        assert {t: sorted(ids) for t, ids in kept.items()} == a_ids
        # ... and by search without `patient`, answered with absolute references.
        by_search = PatientScope(frozenset({A}), base)
        for t in TYPES:
            found = list(fhir.search(t, [], page_size=1000))
            assert {r["subject"]["reference"].startswith(f"{base}/Patient/") for r in found} == {
                True
            }
            assert sorted(r["id"] for r in found if by_search.keeps(r)) == a_ids[t]
    for scope in (by_bulk, by_search):
        assert scope.counts() == {
            "checked": len(data),
            "notJobPatients": others,
            "foreignReferences": 0,
        }
    # The same resources seen from another base name a patient on another server: all dropped.
    elsewhere = PatientScope(frozenset({A}), "http://127.0.0.1:1/fhir")
    for t in TYPES:
        for resource in fhir_search_all(base, t):
            assert not elsewhere.keeps(resource)
    assert elsewhere.counts()["foreignReferences"] == len(data)


def fhir_search_all(base: str, resource_type: str) -> list[dict[str, Any]]:
    with FhirClient(base) as fhir:
        return list(fhir.search(resource_type, [], page_size=1000))


def test_patient_records_from_sekmet_absolute_references_are_the_records_sent(
    sekmet_absolute: SekmetServer, data: list[dict[str, Any]], tmp_path: Path
) -> None:
    manifest = export(sekmet_absolute.base_url, tmp_path, patient=B, format="records")
    assert manifest["extension"]["patientCheck"]["notJobPatients"] == 0
    assert manifest["extension"]["patientCheck"]["checked"] == sum(
        len(of(data, B, t)) for t in TYPES
    )
    # The server wrote http://.../fhir/Patient/x; the records name the patient as the app did.
    entries = list(read_lines(tmp_path / "diary-entries.ndjson"))
    infusions = list(read_lines(tmp_path / "infusions.ndjson"))
    want = [r for r in records(COUNT, patients=3) if r.patient.reference == B]
    got = sorted(json.dumps(e, sort_keys=True) for e in entries + infusions)
    assert got == sorted(json.dumps(dump_record(r), sort_keys=True) for r in want)

"""The Bulk Data $export protocol as the client speaks it, against a mocked server.

Medplum's router has no $export; SEKMET has (tests/integration/test_exports_sekmet.py). These
pin what a real server won't easily send: retries, timeouts, broken downloads, odd manifests.
"""

from __future__ import annotations

import io
import json
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from export_fakes import BASE

from service.fhir_client import (
    BulkExportCancelled,
    BulkExportRefused,
    BulkExportTimeout,
    BulkManifest,
    FhirClient,
    Forbidden,
    InvalidServerResponse,
    NotFound,
    ServerError,
    Unauthorized,
    check_status,
    delete_job,
    download,
    ignored_parameter_issues,
    kick_off,
    parse_manifest,
    wait_for_manifest,
)
from service.fhir_client.errors import FhirTransportError

STATUS = f"{BASE}/bulkstatus/job-1"


def manifest(requires_token: bool = True, **extra: object) -> dict[str, object]:
    return {
        "transactionTime": "2026-11-27T10:00:00Z",
        "request": f"{BASE}/$export?_type=Observation",
        "requiresAccessToken": requires_token,
        "output": [{"type": "Observation", "url": f"{BASE}/files/obs-1.ndjson", "count": 2}],
        "error": [],
        **extra,
    }


def test_system_kick_off_asks_async_fhir_json_with_type_and_since(
    fhir: FhirClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"{BASE}/$export", status=202, headers={"Content-Location": STATUS})
    url = kick_off(fhir, types=["Observation", "MedicationAdministration"], since="2026-01-01Z")
    sent = rsps.calls[0].request
    assert url == STATUS
    # Strict: a server that cannot honour a parameter must refuse, not quietly ignore it.
    assert sent.headers["Prefer"] == "respond-async, handling=strict"
    assert sent.headers["Accept"] == "application/fhir+json"
    query = parse_qs(urlsplit(sent.url).query)
    assert query["_type"] == ["Observation,MedicationAdministration"]
    assert query["_since"] == ["2026-01-01Z"]
    assert query["_outputFormat"] == ["application/fhir+ndjson"]


def test_patient_kick_off_posts_parameters_to_patient_export_once(
    fhir: FhirClient, rsps: responses.RequestsMock
) -> None:
    rsps.post(f"{BASE}/Patient/$export", status=202, headers={"Content-Location": "/s/2"})
    url = kick_off(fhir, types=["Observation"], patient="Patient/p1")
    assert url == "https://fhir.example.test/s/2"  # relative Content-Location resolved
    body = json.loads(rsps.calls[0].request.body)
    params = {p["name"]: p for p in body["parameter"]}
    assert body["resourceType"] == "Parameters"
    assert params["patient"]["valueReference"] == {"reference": "Patient/p1"}
    assert params["_type"]["valueString"] == "Observation"


def test_kick_off_post_is_not_retried_on_503(
    fhir: FhirClient, rsps: responses.RequestsMock
) -> None:
    rsps.post(f"{BASE}/Patient/$export", status=503)
    with pytest.raises(ServerError):
        kick_off(fhir, patient="Patient/p1")
    assert len(rsps.calls) == 1  # a second POST could start a second job


def test_kick_off_without_content_location_is_refused(
    fhir: FhirClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"{BASE}/$export", status=202)
    with pytest.raises(InvalidServerResponse, match="Content-Location"):
        kick_off(fhir)


def test_kick_off_answered_200_is_refused(fhir: FhirClient, rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/$export", status=200, json={"resourceType": "Bundle"})
    with pytest.raises(InvalidServerResponse, match="expected 202"):
        kick_off(fhir)


def test_status_in_progress_reports_progress_and_retry_after(
    fhir: FhirClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(STATUS, status=202, headers={"X-Progress": "50% done", "Retry-After": "7"})
    status = check_status(fhir, STATUS)
    assert not status.done
    assert (status.progress, status.retry_after) == ("50% done", 7.0)


def test_polling_waits_as_retry_after_says_then_returns_the_manifest(
    fhir: FhirClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(STATUS, status=202, headers={"X-Progress": "10%", "Retry-After": "3"})
    rsps.get(STATUS, status=202, headers={"X-Progress": "80%", "Retry-After": "5"})
    rsps.get(STATUS, status=200, json=manifest())
    waits: list[float] = []
    seen: list[str | None] = []
    result = wait_for_manifest(fhir, STATUS, on_progress=seen.append, sleep=waits.append)
    assert waits == [3.0, 5.0]
    assert seen == ["10%", "80%"]
    assert result.output[0].type == "Observation"
    assert result.output[0].count == 2
    assert result.requires_access_token is True


def test_polling_without_retry_after_backs_off(
    fhir: FhirClient, rsps: responses.RequestsMock
) -> None:
    for _ in range(3):
        rsps.get(STATUS, status=202)
    rsps.get(STATUS, status=200, json=manifest())
    waits: list[float] = []
    wait_for_manifest(fhir, STATUS, sleep=waits.append, default_interval=2.0)
    assert waits == [2.0, 3.0, 4.5]


def test_polling_gives_up_after_max_wait(fhir: FhirClient, rsps: responses.RequestsMock) -> None:
    rsps.get(STATUS, status=202, headers={"Retry-After": "30"})
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(BulkExportTimeout):
        wait_for_manifest(fhir, STATUS, max_wait=100, sleep=sleep, clock=lambda: now[0])
    assert now[0] <= 100


def test_polling_stops_when_asked(fhir: FhirClient, rsps: responses.RequestsMock) -> None:
    rsps.get(STATUS, status=202)
    with pytest.raises(BulkExportCancelled):
        wait_for_manifest(fhir, STATUS, should_stop=lambda: True, sleep=lambda _: None)


def test_a_failed_server_job_raises_its_typed_error(
    fhir: FhirClient, rsps: responses.RequestsMock
) -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "x"}]}
    rsps.get(STATUS, status=404, json=outcome)
    with pytest.raises(NotFound):
        check_status(fhir, STATUS)


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"output": []},
        {"transactionTime": "t", "output": "x"},
        {"transactionTime": "t", "output": [{"url": "u"}]},
        {"transactionTime": "t", "output": [{"type": "Observation"}]},
    ],
)
def test_malformed_manifests_are_refused(bad: object) -> None:
    with pytest.raises(InvalidServerResponse):
        parse_manifest(bad)


def _manifest(requires_token: bool) -> BulkManifest:
    return parse_manifest(manifest(requires_token))


def test_download_streams_to_the_file_and_counts_lines(
    fhir: FhirClient, rsps: responses.RequestsMock, tmp_path: Path
) -> None:
    lines = [json.dumps({"resourceType": "Observation", "id": str(i)}) for i in range(3)]
    # No trailing newline: the last line still counts and ends with one on disk.
    rsps.get(f"{BASE}/files/obs-1.ndjson", body="\n".join(lines))
    dest = tmp_path / "Observation.ndjson"
    count = download(fhir, f"{BASE}/files/obs-1.ndjson", dest, _manifest(True))
    assert count == 3
    assert dest.read_text().splitlines() == lines
    assert not dest.with_name(dest.name + ".part").exists()
    sent = rsps.calls[0].request
    assert sent.headers["Accept"] == "application/fhir+ndjson"


def test_download_sends_no_credentials_when_the_manifest_needs_none(
    rsps: responses.RequestsMock, tmp_path: Path
) -> None:
    from service.fhir_client import BearerTokenAuth

    with FhirClient(BASE, auth=BearerTokenAuth("synthetic-token")) as fhir:
        rsps.get("https://files.example.test/o.ndjson", body="{}\n")
        download(fhir, "https://files.example.test/o.ndjson", tmp_path / "o", _manifest(False))
        assert "Authorization" not in rsps.calls[0].request.headers
        with pytest.raises(InvalidServerResponse, match="off the server"):
            download(fhir, "https://files.example.test/o.ndjson", tmp_path / "p", _manifest(True))


def test_an_interrupted_download_leaves_nothing_and_a_retry_has_no_duplicate_lines(
    fhir: FhirClient, rsps: responses.RequestsMock, tmp_path: Path
) -> None:
    url = f"{BASE}/files/obs-1.ndjson"
    dest = tmp_path / "Observation.ndjson"
    dest.write_text("from an earlier export\n")

    class BreaksOff(io.RawIOBase):
        """A body that delivers one line, then the connection drops."""

        sent = False

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            if self.sent:
                raise requests.exceptions.ChunkedEncodingError("connection reset")
            self.sent = True
            data = b'{"resourceType":"Observation","id":"1"}\n'
            buffer[: len(data)] = data
            return len(data)

    def broken(_: requests.PreparedRequest) -> tuple[int, dict[str, str], object]:
        return 200, {}, io.BufferedReader(BreaksOff())

    rsps.add_callback(responses.GET, url, callback=broken)
    with pytest.raises(FhirTransportError):
        download(fhir, url, dest, _manifest(True))
    assert dest.read_text() == "from an earlier export\n"  # untouched: no half file renamed
    assert not list(tmp_path.glob("*.part"))

    rsps.replace(responses.GET, url, body='{"id":"1"}\n{"id":"2"}\n')
    assert download(fhir, url, dest, _manifest(True)) == 2
    assert dest.read_text() == '{"id":"1"}\n{"id":"2"}\n'


def test_delete_job_deletes_the_status_url(fhir: FhirClient, rsps: responses.RequestsMock) -> None:
    rsps.delete(STATUS, status=202)
    delete_job(fhir, STATUS)
    assert rsps.calls[0].request.method == "DELETE"


@pytest.mark.parametrize(
    "status",
    [
        HTTPStatus.BAD_REQUEST,
        HTTPStatus.NOT_FOUND,
        HTTPStatus.METHOD_NOT_ALLOWED,
        HTTPStatus.UNPROCESSABLE_ENTITY,
        HTTPStatus.NOT_IMPLEMENTED,
    ],
)
def test_a_kick_off_the_server_will_not_run_as_asked_is_refused(
    fhir: FhirClient, rsps: responses.RequestsMock, status: HTTPStatus
) -> None:
    rsps.post(f"{BASE}/Patient/$export", status=status)
    with pytest.raises(BulkExportRefused, match=str(status.value)):
        kick_off(fhir, patient="Patient/p1")


@pytest.mark.parametrize(
    ("status", "error"),
    [(HTTPStatus.UNAUTHORIZED, Unauthorized), (HTTPStatus.FORBIDDEN, Forbidden)],
)
def test_auth_failures_at_kick_off_are_not_refusals_to_work_around(
    fhir: FhirClient, rsps: responses.RequestsMock, status: HTTPStatus, error: type[Exception]
) -> None:
    rsps.get(f"{BASE}/$export", status=status)
    with pytest.raises(error) as caught:
        kick_off(fhir)
    assert not isinstance(caught.value, BulkExportRefused)


def test_only_not_supported_issues_count_as_ignored_parameters() -> None:
    def outcome(*codes: str) -> dict[str, object]:
        issues = [{"severity": "warning", "code": c} for c in codes]
        return {"resourceType": "OperationOutcome", "issue": issues}

    assert ignored_parameter_issues(outcome("not-supported")) == 1
    assert ignored_parameter_issues(outcome("not-supported", "processing", "not-supported")) == 2
    assert ignored_parameter_issues(outcome("processing", "too-costly")) == 0
    assert ignored_parameter_issues({"resourceType": "Observation", "issue": []}) == 0
    assert ignored_parameter_issues({"resourceType": "OperationOutcome"}) == 0

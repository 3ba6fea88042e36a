"""POST/GET/DELETE /exports against the real test FHIR server; openapi.yaml checks every answer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from flask import Flask
from flask.testing import FlaskClient

import mappings
from mappings.context import MappingContext
from service import wiring
from service.app import create_app
from service.config import Settings
from service.fhir_client import FhirClient
from service.schemas import RecordKind, load_records
from service.store import exports as jobs
from tests.api.contract import ContractClient
from tests.api.samples import DIARY_ENTRY
from tests.conftest import PATIENT, headers, make_env
from tests.fhir_server import RunningServer, start_fhir_server
from tests.unit.exports.export_synthetic import batch_put, resources

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    running = start_fhir_server(persist=False)
    with FhirClient(running.base_url) as fhir:
        batch_put(fhir, resources(40))
        own = load_records(DIARY_ENTRY, RecordKind.DIARY_ENTRY)
        batch_put(fhir, mappings.to_resources(own, MappingContext("mg-diary-app", "urn:app")))
    yield running
    running.stop()


def settings(tmp_path: Path, server: RunningServer) -> Settings:
    return Settings.from_env(make_env(tmp_path, DIARYBRIDGE_FHIR_BASE_URL=server.base_url))


@pytest.fixture
def app(tmp_path: Path, server: RunningServer) -> Flask:
    return create_app(settings(tmp_path, server))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    app.test_client_class = ContractClient
    return app.test_client()


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def wait_done(client: FlaskClient, status_path: str, who: str = "batch") -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = client.get(status_path, headers=headers(who))
        if response.status_code != 202:
            return response
        assert response.headers["X-Progress"]
        assert response.headers["Retry-After"] == "2"
        time.sleep(0.1)
    raise AssertionError("export did not finish within 60 s")


def test_kick_off_poll_download(client: FlaskClient) -> None:
    started = client.post(
        "/exports", json={"types": ["Observation"], "format": "fhir"}, headers=headers("batch")
    )
    assert started.status_code == 202
    status_path = path_of(started.headers["Content-Location"])
    done = wait_done(client, status_path)
    assert done.status_code == 200
    manifest = done.get_json()
    assert manifest["requiresAccessToken"] is True
    assert manifest["request"].endswith("/exports")
    [item] = manifest["output"]
    assert item["type"] == "Observation"
    file = client.get(path_of(item["url"]), headers=headers("batch"))
    assert file.status_code == 200
    assert file.mimetype == "application/fhir+ndjson"
    lines = file.get_data(as_text=True).splitlines()
    assert len(lines) == item["count"] > 0
    for line in lines:
        get_fhir_model_class("Observation").model_validate_json(line)

    # Another client learns nothing of the job; DELETE withdraws it for its owner too.
    assert client.get(status_path, headers=headers("clinician")).status_code == 404
    assert client.delete(status_path, headers=headers("batch")).status_code == 202
    assert client.get(status_path, headers=headers("batch")).status_code == 404
    assert client.get(path_of(item["url"]), headers=headers("batch")).status_code == 404


def test_a_patient_bound_app_exports_its_own_patient_only(client: FlaskClient) -> None:
    other = client.post(
        "/exports", json={"patient": "Patient/synthetic-export-0001"}, headers=headers("diary_app")
    )
    assert other.status_code == 403
    own = client.post("/exports", json={"format": "records"}, headers=headers("diary_app"))
    assert own.status_code == 202
    done = wait_done(client, path_of(own.headers["Content-Location"]), "diary_app")
    assert done.status_code == 200
    [item] = done.get_json()["output"]
    assert item["type"] == "diary-entry"
    body = client.get(path_of(item["url"]), headers=headers("diary_app"))
    entries = [json.loads(line) for line in body.get_data(as_text=True).splitlines()]
    assert {e["patient"]["reference"] for e in entries} == {PATIENT}
    assert [e["entry_id"] for e in entries] == [DIARY_ENTRY["entry_id"]]


def test_bad_requests_and_missing_scopes(client: FlaskClient) -> None:
    bad = client.post("/exports", json={"format": "xlsx"}, headers=headers("batch"))
    assert bad.status_code == 422
    assert bad.get_json()["problems"][0]["field"] == "format"
    assert client.post("/exports", json={}).status_code == 401
    assert client.get("/exports/no-such-job", headers=headers("batch")).status_code == 404


def test_a_job_interrupted_by_a_restart_is_resumed_by_the_next_app(
    tmp_path: Path, server: RunningServer
) -> None:
    first = create_app(settings(tmp_path, server))
    with wiring.of(first).sessions.begin() as session:
        jobs.create_export_job(
            session,
            job_id="job-from-before-the-restart",
            client_id="registry-export",
            patient=None,
            request={"types": ["MedicationAdministration"], "format": "csv"},
            request_url="http://localhost/exports",
        )
        jobs.claim_export_job(
            session,
            "runner-of-a-dead-process",
            stale_after=60,
            now=datetime.now(UTC) - timedelta(minutes=5),
        )
    second = create_app(settings(tmp_path, server))  # the restart: finds it and resumes
    second.test_client_class = ContractClient
    client = second.test_client()
    done = wait_done(client, "/exports/job-from-before-the-restart")
    assert done.status_code == 200
    assert {o["type"] for o in done.get_json()["output"]} == {"diary-entry", "infusion"}

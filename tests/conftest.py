"""Fixtures shared by every tier: synthetic credentials, settings and an app on a temp database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.app import create_app
from service.config import Settings
from tests.fhir_server import (
    CountByIdentifier,
    FhirServerError,
    RunningServer,
    count_by_identifier,
    start_fhir_server,
)
from tests.sekmet_server import SekmetServer, SekmetServerError, start_sekmet_server

PATIENT = "Patient/synthetic-mg-001"
OTHER_PATIENT = "Patient/synthetic-mg-002"

# Synthetic API keys, one per kind of user; only their hashes would be configured in production.
KEYS = {
    "diary_app": {
        "key": "diary-app-key-0123456789",
        "client_id": "mg-diary-app",
        "scopes": "patient/*.read patient/*.write",
        "patient": PATIENT,
    },
    "clinician": {
        "key": "clinician-key-0123456789",
        "client_id": "clinic-viewer",
        "scopes": "user/*.read",
    },
    "batch": {
        "key": "batch-job-key-0123456789",
        "client_id": "registry-export",
        "scopes": "system/*.read system/*.write",
    },
}


def headers(who: str) -> dict[str, str]:
    """Request headers carrying the API key of one synthetic user."""
    return {"X-API-Key": KEYS[who]["key"]}


def make_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment like a deployment's, on a temporary SQLite file."""
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'diarybridge.sqlite3'}",
        "DIARYBRIDGE_API_KEYS": json.dumps(list(KEYS.values())),
        "DIARYBRIDGE_TESTING": "true",
        # Tests that check delivered outcomes must not depend on how loaded the machine is;
        # the budget's own tests set a small one.
        "DIARYBRIDGE_SYNC_PUSH_BUDGET_SECONDS": "300",
    }
    env.update(extra)
    return env


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    yield create_app(Settings.from_env(make_env(tmp_path)))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# The real FHIR server (Medplum's router, tests/fhir_server): started once, on first use.


def _start(data_dir: Path) -> RunningServer:
    try:
        return start_fhir_server(data_dir=data_dir)
    except FhirServerError as exc:
        # Fail, never skip: integration tests that silently vanish prove nothing.
        pytest.fail(f"the test FHIR server did not start: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def fhir_server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The session's FHIR server process: base_url, stop(), kill(), restart(), reset()."""
    server = _start(tmp_path_factory.mktemp("fhir-server"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fhir_server(fhir_server_process: RunningServer) -> str:
    """The FHIR base URL of the session's server, e.g. http://127.0.0.1:8123."""
    return fhir_server_process.base_url


@pytest.fixture
def fhir_server_running(fhir_server_process: RunningServer) -> RunningServer:
    """The session's server, started again if an earlier test stopped or killed it."""
    if not fhir_server_process.is_running():
        fhir_server_process.start()
    return fhir_server_process


@pytest.fixture
def private_fhir_server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server of this test's own, for tests that stop, kill or reset it."""
    server = _start(tmp_path / "fhir-server")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def count_resources(fhir_server: str) -> CountByIdentifier:
    """count_resources(resource_type, system, value) on the session's server."""

    def count(resource_type: str, system: str, value: str) -> int:
        return count_by_identifier(fhir_server, resource_type, system, value)

    return count


# The second real FHIR server, SEKMET (tests/sekmet_server): its own venv, installed on first use.


def _start_sekmet(data_dir: Path, *, absolute_references: bool) -> SekmetServer:
    try:
        return start_sekmet_server(data_dir=data_dir, absolute_references=absolute_references)
    except SekmetServerError as exc:
        pytest.fail(f"the SEKMET test FHIR server did not start: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def sekmet_server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SekmetServer]:
    """SEKMET answering relative references (Patient/x), as Medplum does."""
    server = _start_sekmet(tmp_path_factory.mktemp("sekmet"), absolute_references=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sekmet_server(sekmet_server_process: SekmetServer) -> str:
    """SEKMET's FHIR base URL, e.g. http://127.0.0.1:8123/fhir (note the /fhir)."""
    return sekmet_server_process.base_url


@pytest.fixture(scope="session")
def sekmet_server_absolute_process(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SekmetServer]:
    """SEKMET answering absolute literal references (http://.../fhir/Patient/x), like Firely."""
    server = _start_sekmet(tmp_path_factory.mktemp("sekmet-absolute"), absolute_references=True)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sekmet_server_absolute(sekmet_server_absolute_process: SekmetServer) -> str:
    """The base URL of the SEKMET server with absolute_references: true."""
    return sekmet_server_absolute_process.base_url


# Each param names the session fixture that gives its base URL; only the one asked is started.
FHIR_SERVERS = {
    "medplum": "fhir_server",
    "sekmet": "sekmet_server",
    "sekmet-absolute": "sekmet_server_absolute",
}


@pytest.fixture(params=list(FHIR_SERVERS))
def any_fhir_server(request: pytest.FixtureRequest) -> str:
    """The base URL of each real FHIR server in turn: the test runs once per server.

    To mark one server's run, parametrize the name indirectly instead:
    `@pytest.mark.parametrize("any_fhir_server", ["medplum", pytest.param("sekmet",
    marks=pytest.mark.xfail(strict=True, reason=...)), ...], indirect=True)`.
    """
    return str(request.getfixturevalue(FHIR_SERVERS[request.param]))

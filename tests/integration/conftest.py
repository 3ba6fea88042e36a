"""Session fixtures for the integration tier: a real FHIR server (Medplum's router) on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fhir_server import (
    CountByIdentifier,
    FhirServerError,
    RunningServer,
    count_by_identifier,
    start_fhir_server,
)


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

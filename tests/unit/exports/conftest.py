"""Fixtures for the export unit tests: a mocked FHIR server (responses) and a fast client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses
from export_fakes import BASE

from service.fhir_client import FhirClient, RetryPolicy


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def fhir(sleeps: list[float]) -> Iterator[FhirClient]:
    policy = RetryPolicy(max_attempts=3, sleep=sleeps.append, jitter=lambda: 0.0)
    with FhirClient(BASE, retry=policy) as client:
        yield client

"""Fixtures for the FHIR client unit tests: a mocked server, a recording sleep."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import responses
from fhir_fakes import BASE, FakeTime

from service.fhir_client import FhirClient, RetryPolicy


@pytest.fixture(autouse=True)
def _no_ca_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests swaps verify=True for these paths; keep the default observable.
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def policy(fake_time: FakeTime) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=4,
        base_delay=0.5,
        max_delay=8.0,
        deadline=60.0,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        wall_clock=lambda: datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC),
        jitter=lambda: 0.5,
    )


@pytest.fixture
def client(policy: RetryPolicy) -> Iterator[FhirClient]:
    with FhirClient(BASE, timeout=(3.0, 20.0), retry=policy) as fhir:
        yield fhir

"""Retries: which failures, how long to wait, and never for a request that could duplicate."""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus

import pytest
import requests
import responses
from fhir_fakes import BASE, FakeTime, observation, outcome

from service.fhir_client import (
    FhirClient,
    FhirTransportError,
    RetryPolicy,
    ServerError,
    TooManyRequests,
)
from service.fhir_client.retry import parse_retry_after

OBS_URL = f"{BASE}/Observation/obs-1"


def test_429_honours_retry_after_seconds(
    rsps: responses.RequestsMock, client: FhirClient, fake_time: FakeTime
) -> None:
    rsps.get(OBS_URL, status=HTTPStatus.TOO_MANY_REQUESTS, headers={"Retry-After": "7"})
    rsps.get(OBS_URL, json=observation())

    assert client.read("Observation", "obs-1")["id"] == "obs-1"
    assert fake_time.sleeps == [7.0]
    assert len(rsps.calls) == 2


def test_429_honours_retry_after_http_date(
    rsps: responses.RequestsMock, client: FhirClient, fake_time: FakeTime
) -> None:
    # The policy's wall clock says 12:00:00 GMT; the server asks for 12:00:12.
    rsps.get(
        OBS_URL,
        status=HTTPStatus.TOO_MANY_REQUESTS,
        headers={"Retry-After": "Sun, 01 Mar 2026 12:00:12 GMT"},
    )
    rsps.get(OBS_URL, json=observation())

    client.read("Observation", "obs-1")
    assert fake_time.sleeps == [12.0]


def test_retry_after_beyond_deadline_raises_with_the_wait(
    rsps: responses.RequestsMock, client: FhirClient, fake_time: FakeTime
) -> None:
    rsps.get(OBS_URL, status=HTTPStatus.TOO_MANY_REQUESTS, headers={"Retry-After": "3600"})

    with pytest.raises(TooManyRequests) as caught:
        client.read("Observation", "obs-1")

    assert caught.value.retry_after == 3600.0  # the caller can reschedule
    assert fake_time.sleeps == []
    assert len(rsps.calls) == 1


def test_503_then_success_backs_off_with_jitter(
    rsps: responses.RequestsMock, client: FhirClient, fake_time: FakeTime
) -> None:
    rsps.get(OBS_URL, status=HTTPStatus.SERVICE_UNAVAILABLE)
    rsps.get(OBS_URL, status=HTTPStatus.BAD_GATEWAY)
    rsps.get(OBS_URL, json=observation())

    client.read("Observation", "obs-1")
    # jitter fixed at 0.5 of the cap: cap 0.5 s after try 1, 1.0 s after try 2
    assert fake_time.sleeps == [0.25, 0.5]


def test_gives_up_after_max_attempts(
    rsps: responses.RequestsMock, client: FhirClient, fake_time: FakeTime
) -> None:
    rsps.get(
        OBS_URL, status=HTTPStatus.GATEWAY_TIMEOUT, json=outcome("timeout", "upstream timed out")
    )

    with pytest.raises(ServerError) as caught:
        client.read("Observation", "obs-1")

    assert caught.value.status == HTTPStatus.GATEWAY_TIMEOUT
    assert len(rsps.calls) == 4
    assert len(fake_time.sleeps) == 3


def test_total_deadline_stops_retrying(rsps: responses.RequestsMock, fake_time: FakeTime) -> None:
    policy = RetryPolicy(
        max_attempts=10,
        base_delay=4.0,
        max_delay=100.0,
        deadline=10.0,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        jitter=lambda: 1.0,
    )
    rsps.get(OBS_URL, status=HTTPStatus.SERVICE_UNAVAILABLE)

    with pytest.raises(ServerError), FhirClient(BASE, retry=policy) as fhir:
        fhir.read("Observation", "obs-1")

    # waits of 4 then 8 would reach 12 s > 10 s: only the first is taken
    assert fake_time.sleeps == [4.0]


def test_plain_create_is_never_retried(
    rsps: responses.RequestsMock, client: FhirClient, fake_time: FakeTime
) -> None:
    rsps.post(f"{BASE}/Observation", status=HTTPStatus.SERVICE_UNAVAILABLE)

    with pytest.raises(ServerError):
        client.create(observation(None))

    assert len(rsps.calls) == 1
    assert fake_time.sleeps == []


def test_plain_create_timeout_is_not_retried(
    rsps: responses.RequestsMock, client: FhirClient, fake_time: FakeTime
) -> None:
    rsps.post(f"{BASE}/Observation", body=requests.exceptions.ReadTimeout("read timed out"))

    with pytest.raises(FhirTransportError) as caught:
        client.create(observation(None))

    assert "ReadTimeout" in str(caught.value)
    assert isinstance(caught.value.__cause__, requests.exceptions.ReadTimeout)
    assert len(rsps.calls) == 1


def test_conditional_create_is_retried(
    rsps: responses.RequestsMock, client: FhirClient, fake_time: FakeTime
) -> None:
    rsps.post(f"{BASE}/Observation", status=HTTPStatus.SERVICE_UNAVAILABLE)
    rsps.post(
        f"{BASE}/Observation",
        status=HTTPStatus.CREATED,
        headers={"Location": f"{BASE}/Observation/srv-9/_history/1"},
    )

    result = client.create(observation(None), if_none_exist={"identifier": "urn:x|1"})

    assert result.id == "srv-9"
    assert len(rsps.calls) == 2


@pytest.mark.parametrize(
    "exc",
    [
        requests.exceptions.ConnectTimeout("connect timed out"),
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectionError("connection refused"),
    ],
)
def test_transport_failure_then_success_on_get(
    rsps: responses.RequestsMock,
    client: FhirClient,
    fake_time: FakeTime,
    exc: Exception,
) -> None:
    rsps.get(OBS_URL, body=exc)
    rsps.get(OBS_URL, json=observation())

    assert client.read("Observation", "obs-1")["id"] == "obs-1"
    assert fake_time.sleeps == [0.25]


def test_transport_failure_after_retries_is_a_transport_error(
    rsps: responses.RequestsMock, client: FhirClient, fake_time: FakeTime
) -> None:
    rsps.get(OBS_URL, body=requests.exceptions.ConnectTimeout("connect timed out"))

    with pytest.raises(FhirTransportError) as caught:
        client.read("Observation", "obs-1")

    assert "ConnectTimeout after 4 attempt(s)" in str(caught.value)
    assert len(rsps.calls) == 4


def test_full_jitter_stays_within_the_exponential_cap() -> None:
    draws = iter([0.0, 0.999, 0.5, 1.0])
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0, jitter=lambda: next(draws))
    assert policy.backoff(1) == 0.0
    assert policy.backoff(2) == pytest.approx(1.998)
    assert policy.backoff(3) == 2.0
    assert policy.backoff(5) == 5.0  # 16 s capped at max_delay


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Sun, 01 Mar 2026 12:01:00 GMT", 60.0),
        ("Sun, 01 Mar 2026 11:00:00 GMT", 0.0),  # in the past: go now
        ("soon", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, datetime(2026, 3, 1, 12, 0, tzinfo=UTC)) == expected

"""The circuit breaker and the time budget: a failing server is refused at once, and a call with
no time left is never sent."""

from __future__ import annotations

import time
from http import HTTPStatus

import pytest
import requests
import responses
from fhir_fakes import BASE, observation

from service.fhir_client import (
    BreakerState,
    BudgetExhausted,
    CircuitBreaker,
    CircuitOpen,
    FhirClient,
    FhirTransportError,
    NotFound,
    RetryPolicy,
    ServerError,
    time_budget,
)

OBS_URL = f"{BASE}/Observation/obs-1"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_after_failures_in_a_row_and_lets_one_trial_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=3, cooldown=30, clock=clock)
    breaker.failed()
    breaker.failed()
    breaker.succeeded()  # an answer in between: the count starts again
    breaker.failed()
    breaker.failed()
    assert breaker.allow() and breaker.state is BreakerState.CLOSED
    breaker.failed()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    assert breaker.retry_after() == 30
    clock.now += 30
    assert breaker.allow()  # the trial
    assert not breaker.allow()  # only one at a time
    breaker.failed()  # the trial failed: another whole cool-down
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    clock.now += 30
    assert breaker.allow()
    breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED and breaker.allow() and breaker.allow()


def test_a_trial_that_never_reports_does_not_block_the_server_for_ever() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, cooldown=10, clock=clock)
    breaker.failed()
    clock.now += 10
    assert breaker.allow() and not breaker.allow()
    clock.now += 10
    assert breaker.allow()


def test_a_client_stops_calling_a_server_that_keeps_failing(rsps: responses.RequestsMock) -> None:
    rsps.get(OBS_URL, body=requests.ConnectionError("refused"))
    breaker = CircuitBreaker(failures=3, cooldown=60)
    with FhirClient(BASE, retry=RetryPolicy(max_attempts=1), breaker=breaker) as client:
        for _ in range(3):
            with pytest.raises(FhirTransportError) as failed:
                client.read("Observation", "obs-1")
            assert not isinstance(failed.value, CircuitOpen)
        with pytest.raises(CircuitOpen) as refused:
            client.read("Observation", "obs-1")
    assert 0 < refused.value.retry_after <= 60
    assert len(rsps.calls) == 3  # the fourth call never left


def test_answers_even_errors_keep_the_circuit_closed_and_5xx_open_it(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(OBS_URL, status=HTTPStatus.NOT_FOUND, json={"resourceType": "OperationOutcome"})
    breaker = CircuitBreaker(failures=2, cooldown=60)
    with FhirClient(BASE, retry=RetryPolicy(max_attempts=1), breaker=breaker) as client:
        for _ in range(3):
            with pytest.raises(NotFound):
                client.read("Observation", "obs-1")
        assert breaker.state is BreakerState.CLOSED
        rsps.replace(responses.GET, OBS_URL, status=HTTPStatus.BAD_GATEWAY)
        for _ in range(2):
            with pytest.raises(ServerError):
                client.read("Observation", "obs-1")
    assert breaker.state is BreakerState.OPEN


def test_a_spent_time_budget_sends_nothing(rsps: responses.RequestsMock) -> None:
    rsps.get(OBS_URL, json=observation())
    with FhirClient(BASE) as client, time_budget(0.0), pytest.raises(BudgetExhausted):
        client.read("Observation", "obs-1")
    assert len(rsps.calls) == 0


def test_a_retry_that_would_overrun_the_budget_is_not_made(rsps: responses.RequestsMock) -> None:
    rsps.get(OBS_URL, status=HTTPStatus.SERVICE_UNAVAILABLE, headers={"Retry-After": "5"})
    rsps.get(OBS_URL, json=observation())
    policy = RetryPolicy(max_attempts=4, deadline=60)
    started = time.monotonic()
    with FhirClient(BASE, retry=policy) as client, time_budget(2.0), pytest.raises(ServerError):
        client.read("Observation", "obs-1")
    assert time.monotonic() - started < 1.0  # gave up instead of sleeping past the budget
    assert len(rsps.calls) == 1


def test_the_budget_cuts_the_timeouts_of_a_call(rsps: responses.RequestsMock) -> None:
    rsps.get(OBS_URL, json=observation())
    with FhirClient(BASE, timeout=(5.0, 30.0)) as client, time_budget(1.0):
        client.read("Observation", "obs-1")
    connect, read = rsps.calls[0].request.req_kwargs["timeout"]
    assert 0 < connect <= 1.0 and 0 < read <= 1.0

"""transaction and batch: per-entry results, failed entries, retry only when replay is safe."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
import responses
from fhir_fakes import BASE, FakeTime, observation, outcome

from service.fhir_client import (
    FhirClient,
    InvalidServerResponse,
    ServerError,
    UnprocessableEntity,
    bundle_is_idempotent,
)


def request_bundle(kind: str, *requests_: dict[str, Any]) -> dict[str, Any]:
    """A transaction/batch Bundle with one Observation per request."""
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {"resource": observation(f"obs-{i}"), "request": request}
            for i, request in enumerate(requests_)
        ],
    }


PUT_0 = {"method": "PUT", "url": "Observation/obs-0"}
PUT_1 = {"method": "PUT", "url": "Observation/obs-1"}
POST_PLAIN = {"method": "POST", "url": "Observation"}
POST_CONDITIONAL = {"method": "POST", "url": "Observation", "ifNoneExist": "identifier=urn:x|1"}


def test_transaction_response_entries_are_parsed(
    rsps: responses.RequestsMock, client: FhirClient
) -> None:
    rsps.post(
        BASE,
        json={
            "resourceType": "Bundle",
            "type": "transaction-response",
            "entry": [
                {
                    "response": {
                        "status": "201 Created",
                        "location": "Observation/obs-0/_history/1",
                        "etag": 'W/"1"',
                        "lastModified": "2026-03-01T12:00:00Z",
                    }
                },
                {
                    "response": {
                        "status": "200",
                        "location": f"{BASE}/Observation/obs-1/_history/5",
                        "etag": 'W/"5"',
                    }
                },
            ],
        },
    )

    results = client.transaction(request_bundle("transaction", PUT_0, PUT_1))

    assert [(r.index, r.status, r.id, r.version_id) for r in results] == [
        (0, 201, "obs-0", "1"),
        (1, 200, "obs-1", "5"),
    ]
    assert results[0].created and not results[1].created
    assert results[0].last_modified == "2026-03-01T12:00:00Z"
    assert rsps.calls[0].request.url == BASE


def test_batch_failed_entry_does_not_hide_the_others(
    rsps: responses.RequestsMock, client: FhirClient
) -> None:
    rsps.post(
        BASE,
        json={
            "resourceType": "Bundle",
            "type": "batch-response",
            "entry": [
                {"response": {"status": "201 Created", "location": "Observation/obs-0/_history/1"}},
                {
                    "response": {
                        "status": "422 Unprocessable Entity",
                        "outcome": outcome(
                            "invariant", "value out of range", ["Observation.valueQuantity"]
                        ),
                    }
                },
                {
                    "response": {"status": "200 OK", "etag": 'W/"3"'},
                    "resource": {**observation("obs-2"), "meta": {"versionId": "3"}},
                },
            ],
        },
    )

    results = client.batch(request_bundle("batch", PUT_0, PUT_1, PUT_1))

    assert [r.ok for r in results] == [True, False, True]
    failed = results[1]
    assert failed.status == HTTPStatus.UNPROCESSABLE_ENTITY
    assert failed.outcome is not None
    assert failed.outcome.issues[0].diagnostics == "value out of range"
    assert failed.outcome.issues[0].expression == ("Observation.valueQuantity",)
    assert (results[2].id, results[2].version_id) == ("obs-2", "3")
    assert results[2].resource is not None


def test_failed_transaction_raises_with_outcome(
    rsps: responses.RequestsMock, client: FhirClient
) -> None:
    rsps.post(
        BASE,
        status=HTTPStatus.UNPROCESSABLE_ENTITY,
        json=outcome("processing", "entry 1 failed", ["Bundle.entry[1].resource"]),
    )

    with pytest.raises(UnprocessableEntity) as caught:
        client.transaction(request_bundle("transaction", PUT_0, PUT_1))

    assert caught.value.outcome is not None
    assert caught.value.outcome.issues[0].expression == ("Bundle.entry[1].resource",)


def test_response_with_wrong_entry_count_is_invalid(
    rsps: responses.RequestsMock, client: FhirClient
) -> None:
    rsps.post(BASE, json={"resourceType": "Bundle", "type": "transaction-response", "entry": []})

    with pytest.raises(InvalidServerResponse, match="0 entries for 2"):
        client.transaction(request_bundle("transaction", PUT_0, PUT_1))


def test_response_of_wrong_bundle_type_is_invalid(
    rsps: responses.RequestsMock, client: FhirClient
) -> None:
    rsps.post(BASE, json={"resourceType": "Bundle", "type": "batch-response", "entry": [{}]})

    with pytest.raises(InvalidServerResponse, match="transaction-response"):
        client.transaction(request_bundle("transaction", PUT_0))


def test_entry_status_must_be_http(rsps: responses.RequestsMock, client: FhirClient) -> None:
    rsps.post(
        BASE,
        json={"resourceType": "Bundle", "type": "batch-response", "entry": [{"response": {}}]},
    )

    with pytest.raises(InvalidServerResponse, match="entry 0"):
        client.batch(request_bundle("batch", PUT_0))


@pytest.mark.parametrize(
    ("requests_", "expected"),
    [
        ((PUT_0, PUT_1), True),
        ((PUT_0, POST_CONDITIONAL), True),
        ((PUT_0, POST_PLAIN), False),
        (({"method": "PATCH", "url": "Observation/obs-0"},), False),
    ],
)
def test_bundle_idempotency(requests_: tuple[dict[str, Any], ...], expected: bool) -> None:
    assert bundle_is_idempotent(request_bundle("transaction", *requests_)) is expected


def test_transaction_of_puts_is_retried(
    rsps: responses.RequestsMock, client: FhirClient, fake_time: FakeTime
) -> None:
    rsps.post(BASE, status=HTTPStatus.SERVICE_UNAVAILABLE)
    rsps.post(
        BASE,
        json={
            "resourceType": "Bundle",
            "type": "transaction-response",
            "entry": [{"response": {"status": "201"}}],
        },
    )

    results = client.transaction(request_bundle("transaction", PUT_0))

    assert results[0].status == HTTPStatus.CREATED
    assert len(rsps.calls) == 2
    assert rsps.calls[0].request.body == rsps.calls[1].request.body  # same bytes resent


def test_transaction_with_plain_post_is_not_retried(
    rsps: responses.RequestsMock, client: FhirClient, fake_time: FakeTime
) -> None:
    rsps.post(BASE, status=HTTPStatus.SERVICE_UNAVAILABLE)

    with pytest.raises(ServerError):
        client.transaction(request_bundle("transaction", PUT_0, POST_PLAIN))
    assert len(rsps.calls) == 1


def test_caller_may_declare_a_transaction_idempotent(
    rsps: responses.RequestsMock, client: FhirClient, fake_time: FakeTime
) -> None:
    rsps.post(BASE, status=HTTPStatus.SERVICE_UNAVAILABLE)

    with pytest.raises(ServerError):
        client.transaction(request_bundle("transaction", POST_PLAIN), idempotent=True)
    assert len(rsps.calls) == 4


def test_bundle_type_must_match_the_interaction(client: FhirClient) -> None:
    with pytest.raises(ValueError):
        client.transaction(request_bundle("batch", PUT_0))

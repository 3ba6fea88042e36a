"""Error statuses become typed exceptions carrying the server's parsed OperationOutcome."""

from __future__ import annotations

from http import HTTPStatus

import pytest
import responses
from fhir_fakes import BASE, observation, outcome

from service.fhir_client import (
    BadRequest,
    Conflict,
    FhirClient,
    FhirServerError,
    Forbidden,
    Gone,
    NotFound,
    PreconditionFailed,
    ServerError,
    Unauthorized,
    UnprocessableEntity,
    error_for_status,
    parse_operation_outcome,
)


@pytest.mark.parametrize(
    ("status", "error_type", "code", "diagnostics", "expression"),
    [
        (
            HTTPStatus.BAD_REQUEST,
            BadRequest,
            "structure",
            "Unknown element 'foo'",
            ["Observation.foo"],
        ),
        (HTTPStatus.CONFLICT, Conflict, "conflict", "Version conflict", ["Observation.meta"]),
        (
            HTTPStatus.PRECONDITION_FAILED,
            PreconditionFailed,
            "conflict",
            'If-Match W/"1" does not match current version 2',
            [],
        ),
        (
            HTTPStatus.UNPROCESSABLE_ENTITY,
            UnprocessableEntity,
            "invariant",
            "obs-6: dataAbsentReason SHALL only be present if value[x] is not present",
            ["Observation.valueQuantity", "Observation.dataAbsentReason"],
        ),
    ],
)
def test_write_error_carries_parsed_outcome(
    rsps: responses.RequestsMock,
    client: FhirClient,
    status: HTTPStatus,
    error_type: type[FhirServerError],
    code: str,
    diagnostics: str,
    expression: list[str],
) -> None:
    rsps.put(
        f"{BASE}/Observation/obs-1", status=status, json=outcome(code, diagnostics, expression)
    )

    with pytest.raises(error_type) as caught:
        client.update(observation("obs-1"))

    error = caught.value
    assert error.status == status
    assert error.method == "PUT"
    assert error.path == "/Observation/obs-1"
    assert error.outcome is not None
    issue = error.outcome.issues[0]
    assert (issue.severity, issue.code) == ("error", code)
    assert issue.diagnostics == diagnostics
    assert issue.expression == tuple(expression)
    # Diagnostics may echo patient values, so the message names issue codes only.
    assert diagnostics not in str(error)
    assert code in str(error)
    assert len(rsps.calls) == 1  # client errors are never retried


def test_error_without_outcome_body(rsps: responses.RequestsMock, client: FhirClient) -> None:
    rsps.get(f"{BASE}/Observation/gone-1", status=HTTPStatus.NOT_FOUND, body="<html>nope</html>")

    with pytest.raises(NotFound) as caught:
        client.read("Observation", "gone-1")

    assert caught.value.outcome is None
    assert "no OperationOutcome" in str(caught.value)


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (HTTPStatus.BAD_REQUEST, BadRequest),
        (HTTPStatus.UNAUTHORIZED, Unauthorized),
        (HTTPStatus.FORBIDDEN, Forbidden),
        (HTTPStatus.NOT_FOUND, NotFound),
        (HTTPStatus.CONFLICT, Conflict),
        (HTTPStatus.GONE, Gone),
        (HTTPStatus.PRECONDITION_FAILED, PreconditionFailed),
        (HTTPStatus.UNPROCESSABLE_ENTITY, UnprocessableEntity),
        (HTTPStatus.INTERNAL_SERVER_ERROR, ServerError),
        (HTTPStatus.NOT_IMPLEMENTED, ServerError),
        (599, ServerError),
        (HTTPStatus.IM_A_TEAPOT, FhirServerError),
    ],
)
def test_status_maps_to_one_type(status: int, error_type: type[FhirServerError]) -> None:
    error = error_for_status(status, method="GET", path="/Patient/1")
    assert type(error) is error_type
    assert error.status == status


def test_outcome_parser_is_lenient_about_odd_issues() -> None:
    parsed = parse_operation_outcome(
        {
            "resourceType": "OperationOutcome",
            "issue": [
                "not an object",
                {
                    "code": "processing",
                    "details": {"text": "Rule failed"},
                    "expression": [1, "X.y"],
                },
            ],
        }
    )
    assert parsed is not None
    assert len(parsed.issues) == 1
    issue = parsed.issues[0]
    assert issue.severity == "error"  # missing severity is treated as an error
    assert issue.details_text == "Rule failed"
    assert issue.expression == ("X.y",)
    assert parsed.has_errors
    assert parse_operation_outcome({"resourceType": "Patient"}) is None

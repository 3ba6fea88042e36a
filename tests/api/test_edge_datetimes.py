"""Date-times at the edge of the calendar are a 422 naming the field, never a 500 or a stored
record that can never be mapped."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.api.samples import DIARY_ENTRY, INFUSION, diary, infusion
from tests.conftest import PATIENT, headers

# Valid ISO 8601, yet past datetime.max / before datetime.min once in UTC; then merely absurd.
EDGES = (
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59+00:00",
    "1899-12-31T23:59:59Z",
    "2100-01-01T00:00:01Z",
)


def post(client: FlaskClient, path: str, body: Any, who: str = "diary_app") -> Any:
    return client.post(path, json=body, headers=headers(who))


def problems(response: Any) -> dict[str, str]:
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY, response.json
    return {p["field"]: p["message"] for p in response.json["problems"]}


@pytest.mark.parametrize("when", EDGES)
def test_edge_recorded_at_is_a_422_naming_the_field(client: FlaskClient, when: str) -> None:
    for path in ("/convert/diary-entries", "/sync/diary-entries"):
        found = problems(post(client, path, diary(recorded_at=when)))
        assert list(found) == ["recorded_at"]
        assert "1900" in found["recorded_at"]


def test_nothing_is_stored_for_an_edge_datetime(client: FlaskClient) -> None:
    problems(post(client, "/sync/diary-entries", diary(recorded_at=EDGES[0])))
    status = client.get("/sync/status", headers=headers("batch"))
    assert status.status_code == HTTPStatus.OK
    assert sum(status.json["counts"].values()) == 0


def test_every_datetime_of_an_infusion_is_bounded(client: FlaskClient) -> None:
    edge = EDGES[0]
    bad = infusion(
        start=edge,
        rate_steps=[dict(INFUSION["rate_steps"][0], at=edge)],
        premedications=[dict(INFUSION["premedications"][0], taken_at=edge)],
        adverse_reactions=[dict(INFUSION["adverse_reactions"][0], onset=edge)],
    )
    found = problems(post(client, "/convert/infusions", bad))
    assert {
        "start",
        "rate_steps[0].at",
        "premedications[0].taken_at",
        "adverse_reactions[0].onset",
    } <= set(found)
    bad_end = problems(post(client, "/convert/infusions", infusion(end=EDGES[1])))
    assert "end" in bad_end
    taken = [dict(DIARY_ENTRY["medications"][0], taken_at=EDGES[1])]
    assert "medications[0].taken_at" in problems(
        post(client, "/convert/diary-entries", diary(medications=taken))
    )


def test_the_sane_edges_themselves_are_accepted(client: FlaskClient) -> None:
    for when in ("1900-01-01T00:00:00Z", "2100-01-01T00:00:00+00:00"):
        response = post(client, "/convert/diary-entries", diary(recorded_at=when))
        assert response.status_code == HTTPStatus.OK, response.json


def test_query_and_export_windows_are_bounded_too(client: FlaskClient) -> None:
    patient = PATIENT.removeprefix("Patient/")
    since = EDGES[0].replace("+", "%2B")
    pulled = client.get(
        f"/patients/{patient}/diary-entries?since={since}", headers=headers("batch")
    )
    assert "since" in problems(pulled)
    exported = post(client, "/exports", {"since": EDGES[0], "format": "fhir"}, who="batch")
    assert "since" in problems(exported)

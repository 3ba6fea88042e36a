"""POST /convert/*: status codes, negotiation, error bodies and the round trip through FHIR."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from flask.testing import FlaskClient

from tests.api.samples import DIARY_ENTRY, INFUSION, diary, infusion
from tests.conftest import OTHER_PATIENT, headers


def post(client: FlaskClient, path: str, body: Any, who: str = "diary_app", **kw: Any) -> Any:
    return client.post(path, json=body, headers={**headers(who), **kw.pop("headers", {})}, **kw)


def resources(bundle: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type
    ]


def test_diary_entry_becomes_an_r4_collection_bundle(client: FlaskClient) -> None:
    response = post(client, "/convert/diary-entries", DIARY_ENTRY)
    assert response.status_code == HTTPStatus.OK, response.json
    assert response.headers["Content-Type"] == "application/fhir+json; fhirVersion=4.0"
    bundle = response.json
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    observations = resources(bundle, "Observation")
    totals = [o for o in observations if len(o.get("component", [])) == 8]
    assert len(totals) == 1
    assert totals[0]["valueInteger"] == 8  # 1+1+0+0+2+1+1+2, computed by us
    assert all(o["subject"] == {"reference": "Patient/synthetic-mg-001"} for o in observations)
    assert all(o["meta"]["source"] == "urn:diarybridge:client:mg-diary-app" for o in observations)
    assert len(resources(bundle, "MedicationAdministration")) == 1


def test_a_list_converts_every_entry(client: FlaskClient) -> None:
    one = post(client, "/convert/diary-entries", DIARY_ENTRY).json
    two = post(client, "/convert/diary-entries", [DIARY_ENTRY, diary(entry_id="second")]).json
    assert len(two["entry"]) == 2 * len(one["entry"])


def test_r5_on_request_by_query_or_accept_header(client: FlaskClient) -> None:
    by_query = post(client, "/convert/infusions?fhirVersion=5.0", INFUSION)
    by_accept = post(
        client,
        "/convert/infusions",
        INFUSION,
        headers={"Accept": "application/fhir+json; fhirVersion=5.0"},
    )
    for response in (by_query, by_accept):
        assert response.status_code == HTTPStatus.OK, response.json
        assert response.headers["Content-Type"].endswith("fhirVersion=5.0")
        main = [
            m
            for m in resources(response.json, "MedicationAdministration")
            if "occurencePeriod" in m and "partOf" not in m  # not a premedication or rate step
        ]
        assert len(main) == 1 and "effectivePeriod" not in main[0]
    r4 = post(client, "/convert/infusions", INFUSION).json
    assert any("effectivePeriod" in m for m in resources(r4, "MedicationAdministration"))


def test_transaction_bundle_uses_conditional_create(client: FlaskClient) -> None:
    bundle = post(client, "/convert/infusions?bundle=transaction", INFUSION).json
    assert bundle["type"] == "transaction"
    for entry in bundle["entry"]:
        assert entry["request"]["method"] == "POST"
        assert entry["request"]["ifNoneExist"].startswith("identifier=")
        assert entry["fullUrl"].startswith("urn:uuid:")


def test_round_trip_through_fhir_gives_back_the_input(client: FlaskClient) -> None:
    for path, record, key in (
        ("/convert/diary-entries", DIARY_ENTRY, "diary_entries"),
        ("/convert/infusions", INFUSION, "infusions"),
    ):
        for version in ("4.0", "5.0"):
            bundle = post(client, f"{path}?fhirVersion={version}", record).json
            back = client.post("/convert/fhir", json=bundle, headers=headers("diary_app"))
            assert back.status_code == HTTPStatus.OK, back.json
            (got,) = back.json[key]
            got.pop("dose_g_per_kg", None)
            got.get("mg_adl", {}).pop("total", None)
            expected = (
                {"route": "intravenous", "reason": "myasthenia_gravis"}
                if key == "infusions"
                else {}
            )
            assert got == {**expected, **record}


def test_round_trip_from_ndjson(client: FlaskClient) -> None:
    bundle = post(client, "/convert/diary-entries", DIARY_ENTRY).json
    ndjson = "\n".join(json.dumps(e["resource"]) for e in bundle["entry"]) + "\n"
    back = client.post(
        "/convert/fhir",
        data=ndjson,
        content_type="application/fhir+ndjson",
        headers=headers("diary_app"),
    )
    assert back.status_code == HTTPStatus.OK, back.json
    assert back.json["diary_entries"][0]["entry_id"] == DIARY_ENTRY["entry_id"]


def test_every_problem_is_listed_with_its_field_and_nothing_is_converted(
    client: FlaskClient,
) -> None:
    bad = diary(entry_id="bad", recorded_at="2026-11-03T20:15:00", fatigue=11, colour="blue")
    response = post(client, "/convert/diary-entries", [DIARY_ENTRY, bad])
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    body = response.json
    assert body["error"] == "invalid_input"
    fields = {p["field"]: p["message"] for p in body["problems"]}
    assert fields["[1].recorded_at"] == "must include a timezone offset"
    assert "[1].fatigue" in fields
    assert fields["[1].colour"] == "Unknown field."
    assert not any(f.startswith("[0]") for f in fields)
    assert "entry" not in body


def test_infusion_rules_name_their_fields(client: FlaskClient) -> None:
    bad = infusion(end="2026-11-09T09:00:00+01:00", status="stopped", dose_g_per_kg=3)
    response = post(client, "/convert/infusions", bad)
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    fields = {p["field"] for p in response.json["problems"]}
    assert {"end", "status_reason", "dose_g_per_kg", "rate_steps"} <= fields


def test_a_given_mg_adl_total_must_agree(client: FlaskClient) -> None:
    entry = diary(mg_adl={**DIARY_ENTRY["mg_adl"], "total": 3})
    response = post(client, "/convert/diary-entries", entry)
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.json["problems"] == [
        {"field": "mg_adl.total", "message": "is 3 but the items add up to 8"}
    ]


def test_wrong_media_type_is_415(client: FlaskClient) -> None:
    response = client.post(
        "/convert/diary-entries",
        data="entry_id=1",
        headers=headers("diary_app"),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    assert response.json["error"] == "unsupported_media_type"


def test_malformed_json_is_400(client: FlaskClient) -> None:
    response = client.post(
        "/convert/diary-entries",
        data="{not json",
        content_type="application/json",
        headers=headers("diary_app"),
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json["error"] == "malformed_json"


def test_oversize_body_is_413(client: FlaskClient) -> None:
    huge = [diary(entry_id=f"e{i}", note="x" * 2000) for i in range(3000)]
    response = post(client, "/convert/diary-entries", huge)
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert response.json["error"] == "request_entity_too_large"


def test_too_many_records_is_413(client: FlaskClient) -> None:
    many = [diary(entry_id=f"e{i}", note=None, medications=None) for i in range(1001)]
    response = post(client, "/convert/diary-entries", many)
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert response.json["error"] == "too_many_records"


def test_unknown_fhir_version_names_the_parameter(client: FlaskClient) -> None:
    response = post(client, "/convert/diary-entries?fhirVersion=3.0", DIARY_ENTRY)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json["problems"] == [{"field": "fhirVersion", "message": "must be 4.0 or 5.0"}]


def test_no_credentials_is_401_with_a_challenge(client: FlaskClient) -> None:
    response = client.post("/convert/diary-entries", json=DIARY_ENTRY)
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json["error"] == "unauthenticated"


def test_a_diary_app_may_not_convert_another_patients_entries(client: FlaskClient) -> None:
    entry = diary(patient={"reference": OTHER_PATIENT}, recorded_at="not even a date")
    response = post(client, "/convert/diary-entries", entry)
    assert response.status_code == HTTPStatus.FORBIDDEN
    # Checked before validation: nothing about the other patient's entry is echoed back.
    assert "problems" not in response.json or response.json["problems"] == []
    assert "synthetic-mg-002" not in response.get_data(as_text=True)


def test_read_only_clinician_cannot_convert_for_writing(client: FlaskClient) -> None:
    response = post(client, "/convert/diary-entries", DIARY_ENTRY, who="clinician")
    assert response.status_code == HTTPStatus.FORBIDDEN


def test_health_needs_no_credentials(client: FlaskClient) -> None:
    assert client.get("/healthz").json == {"status": "ok"}


def test_deeply_nested_json_is_refused_not_a_crash(client: FlaskClient) -> None:
    for depth in (65, 100_000):  # past our bound, and past Python's own recursion limit
        body = "[" * depth + "]" * depth
        response = client.post(
            "/convert/diary-entries",
            data=body,
            content_type="application/json",
            headers=headers("diary_app"),
        )
        assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
        assert response.json["problems"] == [
            {"field": "$", "message": "the JSON nests more than 64 levels"}
        ]
    line = '{"resourceType": "Observation", "x": ' + "[" * 70 + "]" * 70 + "}"
    response = client.post(
        "/convert/fhir",
        data=line,
        content_type="application/fhir+ndjson",
        headers=headers("diary_app"),
    )
    assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
    assert response.json["problems"][0]["field"] == "line 1"

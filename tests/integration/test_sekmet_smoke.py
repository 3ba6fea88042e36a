"""SEKMET, the second real FHIR server: what it answers, so code against it knows its habits.

Each test pins one habit (see tests/sekmet_server/README.md); where SEKMET differs from the
Medplum server, the test says so.
"""

from __future__ import annotations

import time
import uuid
from http import HTTPStatus
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.integration

FHIR_JSON = {"Content-Type": "application/fhir+json"}
SYSTEM = "urn:diarybridge:test:sekmet-smoke"


def observation(patient: str, value: str | None = None) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "identifier": [{"system": SYSTEM, "value": value or str(uuid.uuid4())}],
        "valueInteger": 3,
    }


def create(base: str, resource: dict[str, Any], **headers: str) -> requests.Response:
    return requests.post(
        f"{base}/{resource['resourceType']}",
        json=resource,
        headers={**FHIR_JSON, **headers},
        timeout=10,
    )


def test_metadata_is_an_r4_capability_statement(sekmet_server: str) -> None:
    cap = requests.get(f"{sekmet_server}/metadata", timeout=10).json()
    assert cap["resourceType"] == "CapabilityStatement"
    assert cap["fhirVersion"] == "4.0.1"
    types = {r["type"] for r in cap["rest"][0]["resource"]}
    assert {"Observation", "MedicationAdministration", "Patient"} <= types


def test_create_and_read(sekmet_server: str) -> None:
    created = create(sekmet_server, observation("smoke-read"))
    assert created.status_code == HTTPStatus.CREATED
    body = created.json()
    # versionIds are 1, 2, 3... (Medplum's are UUIDs); Location is absolute with _history.
    assert body["meta"]["versionId"] == "1"
    assert created.headers["ETag"] == 'W/"1"'
    assert created.headers["Location"] == (f"{sekmet_server}/Observation/{body['id']}/_history/1")
    read = requests.get(f"{sekmet_server}/Observation/{body['id']}", timeout=10)
    assert read.status_code == HTTPStatus.OK
    assert read.json()["subject"] == {"reference": "Patient/smoke-read"}
    assert read.headers["ETag"] == 'W/"1"'


def test_if_match_mismatch_is_412_and_an_unquoted_one_is_accepted(sekmet_server: str) -> None:
    body = create(sekmet_server, observation("smoke-ifmatch")).json()
    url = f"{sekmet_server}/Observation/{body['id']}"
    stale = requests.put(url, json=body, headers={**FHIR_JSON, "If-Match": 'W/"7"'}, timeout=10)
    assert stale.status_code == HTTPStatus.PRECONDITION_FAILED
    assert stale.json()["issue"][0]["code"] == "conflict"
    ok = requests.put(url, json=body, headers={**FHIR_JSON, "If-Match": 'W/"1"'}, timeout=10)
    assert ok.status_code == HTTPStatus.OK and ok.json()["meta"]["versionId"] == "2"
    # Medplum answers 400 to an unquoted If-Match; SEKMET takes it as the version.
    bare = requests.put(url, json=body, headers={**FHIR_JSON, "If-Match": "2"}, timeout=10)
    assert bare.status_code == HTTPStatus.OK and bare.json()["meta"]["versionId"] == "3"


def test_conditional_create(sekmet_server: str) -> None:
    value = str(uuid.uuid4())
    criteria = {"If-None-Exist": f"identifier={SYSTEM}|{value}"}
    first = create(sekmet_server, observation("smoke-cond", value), **criteria)
    assert first.status_code == HTTPStatus.CREATED
    again = create(sekmet_server, observation("smoke-cond", value), **criteria)
    assert again.status_code == HTTPStatus.OK  # the existing resource, nothing written
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["meta"]["versionId"] == "1"
    # Unknown parameters in If-None-Exist are refused, not read as "match everything".
    unknown = create(sekmet_server, observation("smoke-cond"), **{"If-None-Exist": "bogus=1"})
    assert unknown.status_code == HTTPStatus.BAD_REQUEST


def test_search_ignores_unknown_parameters_unless_handling_is_strict(sekmet_server: str) -> None:
    params = {"bogus": "1", "_count": "1"}
    lenient = requests.get(f"{sekmet_server}/Observation", params=params, timeout=10)
    assert lenient.status_code == HTTPStatus.OK  # Medplum answers 400 here
    strict = requests.get(
        f"{sekmet_server}/Observation",
        params=params,
        headers={"Prefer": "handling=strict"},
        timeout=10,
    )
    assert strict.status_code == HTTPStatus.BAD_REQUEST
    assert strict.json()["issue"][0]["code"] == "not-supported"


def test_paging_links_are_count_and_offset_and_count_is_capped_at_1000(
    sekmet_server: str,
) -> None:
    patient = f"smoke-page-{uuid.uuid4()}"
    for _ in range(3):
        create(sekmet_server, observation(patient))
    page = requests.get(
        f"{sekmet_server}/Observation",
        params={"subject": f"Patient/{patient}", "_count": "2"},
        timeout=10,
    ).json()
    assert page["total"] == 3 and len(page["entry"]) == 2
    links = {link["relation"]: link["url"] for link in page["link"]}
    assert links["next"].startswith(f"{sekmet_server}/Observation?")
    assert "_count=2" in links["next"] and "_offset=2" in links["next"]
    last = requests.get(links["next"], timeout=10).json()
    assert len(last["entry"]) == 1 and "next" not in {lk["relation"] for lk in last["link"]}
    big = requests.get(
        f"{sekmet_server}/Observation",
        params={"subject": f"Patient/{patient}", "_count": "5000"},
        timeout=10,
    ).json()
    assert "_count=1000" in big["link"][0]["url"]  # silently capped (Medplum: max 1000 too)


def test_transaction_rewrites_urn_uuids_and_is_all_or_nothing(sekmet_server: str) -> None:
    patient_urn = f"urn:uuid:{uuid.uuid4()}"
    value = str(uuid.uuid4())
    obs = observation("x", value)
    obs["subject"] = {"reference": patient_urn}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient_urn,
                "resource": {"resourceType": "Patient", "name": [{"family": "Synthetic"}]},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": obs,
                "request": {
                    "method": "POST",
                    "url": "Observation",
                    "ifNoneExist": f"identifier={SYSTEM}|{value}",
                },
            },
        ],
    }
    answer = requests.post(sekmet_server, json=bundle, headers=FHIR_JSON, timeout=10)
    assert answer.status_code == HTTPStatus.OK, answer.text
    reply = answer.json()
    assert reply["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in reply["entry"]]
    assert [s.split()[0] for s in statuses] == ["201", "201"]
    # response.location is ABSOLUTE (Medplum answers Type/id/_history/vid), etag W/"1".
    patient_at, obs_at = (e["response"]["location"] for e in reply["entry"])
    assert patient_at.startswith(f"{sekmet_server}/Patient/") and patient_at.endswith("/_history/1")
    patient_id = patient_at.split("/")[-3]
    assert reply["entry"][1]["response"]["etag"] == 'W/"1"'
    assert reply["entry"][1]["resource"]["subject"]["reference"] == f"Patient/{patient_id}"
    stored = requests.get(obs_at.rsplit("/_history", 1)[0], timeout=10)
    assert stored.json()["subject"]["reference"] == f"Patient/{patient_id}"

    # One bad entry (Observation without the required code) fails the whole transaction.
    broken = observation("x")
    del broken["code"]
    bad = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": observation("smoke-rollback"),
                "request": {"method": "POST", "url": "Observation"},
            },
            {"resource": broken, "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    failed = requests.post(sekmet_server, json=bad, headers=FHIR_JSON, timeout=10)
    assert failed.status_code in (HTTPStatus.BAD_REQUEST, HTTPStatus.UNPROCESSABLE_ENTITY)
    assert failed.json()["resourceType"] == "OperationOutcome"
    kept = requests.get(
        f"{sekmet_server}/Observation",
        params={"subject": "Patient/smoke-rollback", "_summary": "count"},
        timeout=10,
    ).json()
    assert kept["total"] == 0


def poll_export(status_url: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = requests.get(status_url, timeout=10)
        if status.status_code == HTTPStatus.OK:
            manifest: dict[str, Any] = status.json()
            return manifest
        assert status.status_code == HTTPStatus.ACCEPTED, status.text
        assert status.headers["X-Progress"]
        time.sleep(0.2)
    raise AssertionError(f"export not done within {timeout} s")


def test_export_kick_off_poll_download(sekmet_server: str) -> None:
    create(sekmet_server, observation("smoke-export"))
    no_async = requests.get(f"{sekmet_server}/Patient/$export", timeout=10)
    assert no_async.status_code == HTTPStatus.BAD_REQUEST  # Prefer: respond-async is required
    kick = requests.get(
        f"{sekmet_server}/$export",
        params={"_type": "Observation"},
        headers={"Prefer": "respond-async", "Accept": "application/fhir+json"},
        timeout=10,
    )
    assert kick.status_code == HTTPStatus.ACCEPTED
    status_url = kick.headers["Content-Location"]
    assert status_url.startswith(f"{sekmet_server}/bulk-status/")
    manifest = poll_export(status_url)
    assert manifest["requiresAccessToken"] is False and manifest["error"] == []
    [output] = manifest["output"]
    assert output["type"] == "Observation" and output["url"].startswith(f"{sekmet_server}/")
    ndjson = requests.get(output["url"], timeout=10)
    assert ndjson.headers["Content-Type"].startswith("application/fhir+ndjson")
    lines = ndjson.text.splitlines()
    assert len(lines) == output["count"] >= 1


def test_export_ignores_the_patient_parameter_and_says_so_in_error(sekmet_server: str) -> None:
    kick = requests.get(
        f"{sekmet_server}/Patient/$export",
        params={"patient": "Patient/nobody", "_type": "Observation"},
        headers={"Prefer": "respond-async"},
        timeout=10,
    )
    assert kick.status_code == HTTPStatus.ACCEPTED
    manifest = poll_export(kick.headers["Content-Location"])
    [error] = manifest["error"]
    assert error["type"] == "OperationOutcome"
    outcome = requests.get(error["url"], timeout=10).json()
    assert outcome["issue"][0]["severity"] == "warning"
    assert outcome["issue"][0]["code"] == "not-supported"
    assert "patient" in outcome["issue"][0]["diagnostics"]
    strict = requests.get(
        f"{sekmet_server}/Patient/$export",
        params={"patient": "Patient/nobody"},
        headers={"Prefer": "respond-async, handling=strict"},
        timeout=10,
    )
    assert strict.status_code == HTTPStatus.BAD_REQUEST


def test_absolute_references_in_answers(sekmet_server_absolute: str) -> None:
    base = sekmet_server_absolute
    created = create(base, observation("smoke-abs"))
    assert created.status_code == HTTPStatus.CREATED
    assert created.json()["subject"]["reference"] == f"{base}/Patient/smoke-abs"
    read = requests.get(f"{base}/Observation/{created.json()['id']}", timeout=10).json()
    assert read["subject"]["reference"] == f"{base}/Patient/smoke-abs"
    # Search by the relative form still finds it; the entries answer absolute references.
    found = requests.get(
        f"{base}/Observation", params={"subject": "Patient/smoke-abs"}, timeout=10
    ).json()
    assert found["total"] >= 1
    assert found["entry"][0]["resource"]["subject"]["reference"] == f"{base}/Patient/smoke-abs"

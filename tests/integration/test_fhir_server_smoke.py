"""The test FHIR server behaves as the sync code will rely on; each test is one FHIR interaction."""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import Any

import pytest
import requests

from tests.fhir_server import CountByIdentifier, RunningServer, count_by_identifier

pytestmark = pytest.mark.integration

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
SYSTEM = "https://diarybridge.dev/fhir/test-identifier"
# Synthetic text codes only: these tests exercise the server, not our code tables.
CODE_SYSTEM = "https://diarybridge.dev/fhir/CodeSystem/test-code"


def unique(prefix: str) -> str:
    """A value no other test (or earlier run) uses, so tests share one server safely."""
    return f"{prefix}-{uuid.uuid4()}"


def observation(
    identifier: str, patient: str = "Patient/p-smoke", when: str = "2024-03-01T08:00:00Z"
) -> dict[str, Any]:
    """A minimal valid R4 Observation with a business identifier."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "identifier": [{"system": SYSTEM, "value": identifier}],
        "code": {"coding": [{"system": CODE_SYSTEM, "code": "smoke"}]},
        "subject": {"reference": patient},
        "effectiveDateTime": when,
        "valueString": "synthetic",
    }


def patient(identifier: str) -> dict[str, Any]:
    """A minimal valid R4 Patient with a business identifier."""
    return {"resourceType": "Patient", "identifier": [{"system": SYSTEM, "value": identifier}]}


def assert_outcome(response: requests.Response, status: HTTPStatus) -> dict[str, Any]:
    """The response has this status and an OperationOutcome with an error issue."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert any(issue["severity"] in ("error", "fatal") for issue in body["issue"])
    return body


def create(base: str, resource: dict[str, Any], **headers: str) -> requests.Response:
    """POST a resource to its type endpoint, with extra request headers."""
    url = f"{base}/{resource['resourceType']}"
    return requests.post(url, json=resource, headers={**FHIR_JSON, **headers}, timeout=10)


def transaction(base: str, entries: list[dict[str, Any]], kind: str = "transaction") -> Any:
    """POST a transaction (or batch) Bundle and return the response."""
    bundle = {"resourceType": "Bundle", "type": kind, "entry": entries}
    return requests.post(base, json=bundle, headers=FHIR_JSON, timeout=30)


def conditional_entries(patient_value: str, observation_value: str) -> list[dict[str, Any]]:
    """A Patient and an Observation pointing at it by urn:uuid, both created if none exist."""
    patient_urn = f"urn:uuid:{uuid.uuid4()}"
    obs = observation(observation_value, patient=patient_urn)
    return [
        {
            "fullUrl": patient_urn,
            "resource": patient(patient_value),
            "request": {
                "method": "POST",
                "url": "Patient",
                "ifNoneExist": f"identifier={SYSTEM}|{patient_value}",
            },
        },
        {
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": obs,
            "request": {
                "method": "POST",
                "url": "Observation",
                "ifNoneExist": f"identifier={SYSTEM}|{observation_value}",
            },
        },
    ]


def test_metadata_is_an_honest_r4_capability_statement(fhir_server: str) -> None:
    response = requests.get(f"{fhir_server}/metadata", timeout=10)
    assert response.status_code == HTTPStatus.OK
    capability = response.json()
    assert capability["resourceType"] == "CapabilityStatement"
    assert capability["fhirVersion"] == "4.0.1"
    rest = capability["rest"][0]
    assert {"transaction", "batch"} <= {i["code"] for i in rest["interaction"]}
    obs = next(r for r in rest["resource"] if r["type"] == "Observation")
    assert obs["conditionalCreate"] is True
    assert obs["conditionalUpdate"] is True
    assert "history-type" not in {i["code"] for i in obs["interaction"]}
    params = {p["name"] for p in obs["searchParam"]}
    assert {"patient", "subject", "code", "date", "identifier", "_lastUpdated"} <= params
    # The in-memory matcher cannot evaluate quantities, so they are not advertised.
    assert "value-quantity" not in params


def test_create_read_vread_return_the_stored_version(fhir_server: str) -> None:
    created = create(fhir_server, observation(unique("crud")))
    assert created.status_code == HTTPStatus.CREATED
    body = created.json()
    version = body["meta"]["versionId"]
    assert created.headers["ETag"] == f'W/"{version}"'
    expected = f"{fhir_server}/Observation/{body['id']}/_history/{version}"
    assert created.headers["Location"] == expected

    read = requests.get(f"{fhir_server}/Observation/{body['id']}", timeout=10)
    assert read.status_code == HTTPStatus.OK
    assert read.json() == body
    vread = requests.get(f"{fhir_server}/Observation/{body['id']}/_history/{version}", timeout=10)
    assert vread.status_code == HTTPStatus.OK
    assert vread.json()["meta"]["versionId"] == version


def test_create_ignores_a_client_supplied_id(fhir_server: str) -> None:
    resource = {**observation(unique("client-id")), "id": "chosen-by-client"}
    created = create(fhir_server, resource)
    assert created.status_code == HTTPStatus.CREATED
    assert created.json()["id"] != "chosen-by-client"


def test_conditional_create_twice_keeps_one_resource(
    fhir_server: str, count_resources: CountByIdentifier
) -> None:
    value = unique("cond-create")
    headers = {**FHIR_JSON, "If-None-Exist": f"identifier={SYSTEM}|{value}"}
    url = f"{fhir_server}/Observation"
    first = requests.post(url, json=observation(value), headers=headers, timeout=10)
    second = requests.post(url, json=observation(value), headers=headers, timeout=10)
    assert first.status_code == HTTPStatus.CREATED
    assert second.status_code == HTTPStatus.OK
    assert second.json()["id"] == first.json()["id"]
    assert count_resources("Observation", SYSTEM, value) == 1


def test_conditional_create_with_criteria_the_server_cannot_evaluate_is_refused(
    fhir_server: str,
) -> None:
    # Silently matching nothing would create a duplicate on every retry.
    headers = {**FHIR_JSON, "If-None-Exist": f"identifer={SYSTEM}|typo"}
    response = requests.post(
        f"{fhir_server}/Observation", json=observation(unique("typo")), headers=headers, timeout=10
    )
    assert_outcome(response, HTTPStatus.BAD_REQUEST)


def test_update_with_stale_if_match_is_412_and_history_keeps_both_versions(
    fhir_server: str,
) -> None:
    created = create(fhir_server, observation(unique("ifmatch"))).json()
    url = f"{fhir_server}/Observation/{created['id']}"
    changed = {**created, "valueString": "changed"}

    stale = requests.put(
        url, json=changed, headers={**FHIR_JSON, "If-Match": 'W/"stale"'}, timeout=10
    )
    assert_outcome(stale, HTTPStatus.PRECONDITION_FAILED)

    current = {**FHIR_JSON, "If-Match": f'W/"{created["meta"]["versionId"]}"'}
    updated = requests.put(url, json=changed, headers=current, timeout=10)
    assert updated.status_code == HTTPStatus.OK
    assert updated.json()["meta"]["versionId"] != created["meta"]["versionId"]

    # Read twice: Medplum's MemoryRepository flips the order on every call (fixed in server.mjs).
    for _ in range(2):
        history = requests.get(f"{url}/_history", timeout=10).json()
        values = [e["resource"]["valueString"] for e in history["entry"]]
        assert values == ["changed", "synthetic"]


def test_if_match_without_quotes_is_rejected_not_ignored(fhir_server: str) -> None:
    created = create(fhir_server, observation(unique("unquoted"))).json()
    response = requests.put(
        f"{fhir_server}/Observation/{created['id']}",
        json=created,
        headers={**FHIR_JSON, "If-Match": created["meta"]["versionId"]},
        timeout=10,
    )
    assert_outcome(response, HTTPStatus.BAD_REQUEST)


def test_conditional_update_creates_then_updates_the_same_resource(
    fhir_server: str, count_resources: CountByIdentifier
) -> None:
    value = unique("cond-update")
    url = f"{fhir_server}/Observation?identifier={SYSTEM}|{value}"
    first = requests.put(url, json=observation(value), headers=FHIR_JSON, timeout=10)
    second_body = {**observation(value), "valueString": "second"}
    second = requests.put(url, json=second_body, headers=FHIR_JSON, timeout=10)
    assert first.status_code == HTTPStatus.CREATED
    assert second.status_code == HTTPStatus.OK
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["valueString"] == "second"
    assert count_resources("Observation", SYSTEM, value) == 1


def test_invalid_resource_is_400_with_operation_outcome(fhir_server: str) -> None:
    missing_status = observation(unique("invalid"))
    del missing_status["status"]
    response = create(fhir_server, missing_status)
    body = assert_outcome(response, HTTPStatus.BAD_REQUEST)
    assert body["issue"][0]["expression"] == ["Observation.status"]


def test_unknown_element_and_malformed_json_are_400(fhir_server: str) -> None:
    extra = {**observation(unique("extra")), "notAnElement": 1}
    url = f"{fhir_server}/Observation"
    assert_outcome(
        requests.post(url, json=extra, headers=FHIR_JSON, timeout=10), HTTPStatus.BAD_REQUEST
    )
    assert_outcome(
        requests.post(url, data="{not json", headers=FHIR_JSON, timeout=10), HTTPStatus.BAD_REQUEST
    )


def test_unknown_resource_type_is_404(fhir_server: str) -> None:
    assert_outcome(requests.get(f"{fhir_server}/DiaryEntry", timeout=10), HTTPStatus.NOT_FOUND)


def test_system_search_is_refused_rather_than_answered_empty(fhir_server: str) -> None:
    response = requests.get(f"{fhir_server}/", params={"_type": "Observation"}, timeout=10)
    assert_outcome(response, HTTPStatus.BAD_REQUEST)


def test_search_pages_follow_next_links_to_every_match(fhir_server: str) -> None:
    subject = f"Patient/{unique('paging')}"
    created = set()
    for day in range(1, 26):
        body = observation(unique("page"), patient=subject, when=f"2024-04-{day:02d}T08:00:00Z")
        response = create(fhir_server, body)
        created.add(response.json()["id"])

    seen: list[str] = []
    pages = 0
    url: str | None = f"{fhir_server}/Observation?subject={subject}&_count=10"
    while url is not None:
        bundle = requests.get(url, timeout=10).json()
        pages += 1
        assert bundle["total"] == 25
        seen += [e["resource"]["id"] for e in bundle.get("entry", [])]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    assert pages == 3
    assert len(seen) == 25
    assert set(seen) == created


def test_search_without_count_pages_by_twenty(fhir_server: str) -> None:
    subject = f"Patient/{unique('default-page')}"
    for _ in range(21):
        body = observation(unique("dp"), patient=subject)
        create(fhir_server, body)
    bundle = requests.get(
        f"{fhir_server}/Observation", params={"subject": subject}, timeout=10
    ).json()
    assert len(bundle["entry"]) == 20
    assert any(link["relation"] == "next" for link in bundle["link"])


def test_search_by_patient_code_date_identifier_and_last_updated(fhir_server: str) -> None:
    pid = unique("search")
    subject = f"Patient/{pid}"
    march = observation(unique("mar"), patient=subject, when="2024-03-10T08:00:00Z")
    may = observation(unique("may"), patient=subject, when="2024-05-10T08:00:00Z")
    ids = {}
    for name, body in (("march", march), ("may", may)):
        response = create(fhir_server, body)
        ids[name] = response.json()["id"]
        last_updated = response.json()["meta"]["lastUpdated"]

    def found(**params: str) -> set[str]:
        bundle = requests.get(f"{fhir_server}/Observation", params=params, timeout=10).json()
        return {e["resource"]["id"] for e in bundle.get("entry", [])}

    both = {ids["march"], ids["may"]}
    assert found(patient=subject) == both
    assert found(patient=pid) == both
    assert found(subject=subject, code=f"{CODE_SYSTEM}|smoke") == both
    assert found(subject=subject, code=f"{CODE_SYSTEM}|other") == set()
    assert found(subject=subject, date="ge2024-04-01") == {ids["may"]}
    assert found(subject=subject, date="lt2024-04-01") == {ids["march"]}
    identifier = march["identifier"][0]["value"]
    assert found(identifier=f"{SYSTEM}|{identifier}") == {ids["march"]}
    assert found(subject=subject, _lastUpdated=f"le{last_updated}") == both
    assert found(subject=subject, _lastUpdated="gt2100-01-01") == set()


def test_search_with_unsupported_parameter_is_400(fhir_server: str) -> None:
    response = requests.get(
        f"{fhir_server}/Observation", params={"value-quantity": "5"}, timeout=10
    )
    assert_outcome(response, HTTPStatus.BAD_REQUEST)


def test_transaction_with_if_none_exist_twice_creates_no_duplicates(
    fhir_server: str, count_resources: CountByIdentifier
) -> None:
    patient_value, obs_value = unique("tx-patient"), unique("tx-obs")
    first = transaction(fhir_server, conditional_entries(patient_value, obs_value))
    second = transaction(fhir_server, conditional_entries(patient_value, obs_value))
    assert first.status_code == HTTPStatus.OK, first.text
    assert second.status_code == HTTPStatus.OK, second.text
    assert [e["response"]["status"] for e in first.json()["entry"]] == ["201", "201"]
    assert [e["response"]["status"] for e in second.json()["entry"]] == ["200", "200"]
    assert count_resources("Patient", SYSTEM, patient_value) == 1
    assert count_resources("Observation", SYSTEM, obs_value) == 1

    # The urn:uuid reference was rewritten to the one real Patient.
    patient_location = first.json()["entry"][0]["response"]["location"]
    patient_ref = "/".join(patient_location.split("/")[:2])
    obs = second.json()["entry"][1]["resource"]
    assert obs["subject"]["reference"] == patient_ref
    assert requests.get(f"{fhir_server}/{patient_ref}", timeout=10).status_code == HTTPStatus.OK


def test_transaction_is_all_or_nothing(
    fhir_server: str, count_resources: CountByIdentifier
) -> None:
    value = unique("rollback")
    invalid = observation(unique("rollback-obs"))
    del invalid["status"]
    entries = [
        {"resource": patient(value), "request": {"method": "POST", "url": "Patient"}},
        {"resource": invalid, "request": {"method": "POST", "url": "Observation"}},
    ]
    assert_outcome(transaction(fhir_server, entries), HTTPStatus.BAD_REQUEST)
    assert count_resources("Patient", SYSTEM, value) == 0


def test_batch_answers_each_entry_on_its_own(
    fhir_server: str, count_resources: CountByIdentifier
) -> None:
    value = unique("batch")
    invalid = observation(unique("batch-obs"))
    del invalid["status"]
    entries = [
        {"resource": patient(value), "request": {"method": "POST", "url": "Patient"}},
        {"resource": invalid, "request": {"method": "POST", "url": "Observation"}},
    ]
    response = transaction(fhir_server, entries, kind="batch")
    assert response.status_code == HTTPStatus.OK
    bundle = response.json()
    assert bundle["type"] == "batch-response"
    assert [e["response"]["status"] for e in bundle["entry"]] == ["201", "400"]
    assert count_resources("Patient", SYSTEM, value) == 1


def test_conditional_transaction_is_capped_at_eight_entries(fhir_server: str) -> None:
    # Medplum's limit: a transaction with any conditional entry may hold at most 8 entries.
    def entries(n: int) -> list[dict[str, Any]]:
        return [
            {
                "resource": observation(value := unique("cap")),
                "request": {
                    "method": "POST",
                    "url": "Observation",
                    "ifNoneExist": f"identifier={SYSTEM}|{value}",
                },
            }
            for _ in range(n)
        ]

    assert transaction(fhir_server, entries(8)).status_code == HTTPStatus.OK
    assert_outcome(transaction(fhir_server, entries(9)), HTTPStatus.BAD_REQUEST)
    assert transaction(fhir_server, entries(9), kind="batch").status_code == HTTPStatus.OK


def test_killed_server_restarts_with_every_answered_write(
    private_fhir_server: RunningServer,
) -> None:
    base = private_fhir_server.base_url
    value = unique("durable")
    created = create(base, observation(value))
    assert created.status_code == HTTPStatus.CREATED

    private_fhir_server.kill()
    assert not private_fhir_server.is_running()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/metadata", timeout=5)

    private_fhir_server.start()
    assert private_fhir_server.base_url == base
    read = requests.get(f"{base}/Observation/{created.json()['id']}", timeout=10)
    assert read.status_code == HTTPStatus.OK
    assert read.json()["meta"] == created.json()["meta"]
    assert count_by_identifier(base, "Observation", SYSTEM, value) == 1


def test_reset_empties_the_server(private_fhir_server: RunningServer) -> None:
    base = private_fhir_server.base_url
    value = unique("reset")
    create(base, observation(value))
    assert count_by_identifier(base, "Observation", SYSTEM, value) == 1
    private_fhir_server.reset()
    assert count_by_identifier(base, "Observation", SYSTEM, value) == 0
    private_fhir_server.restart()
    assert count_by_identifier(base, "Observation", SYSTEM, value) == 0

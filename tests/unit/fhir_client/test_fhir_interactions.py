"""Interactions on the wire: URLs, headers, bodies, results, timeouts, TLS, bad responses."""

from __future__ import annotations

import json
from http import HTTPStatus
from pathlib import Path

import pytest
import responses
from fhir_fakes import BASE, observation

from service.fhir_client import FhirClient, InvalidServerResponse, RetryPolicy

OBS_URL = f"{BASE}/Observation/obs-1"


def test_read_sends_fhir_json_headers(rsps: responses.RequestsMock, client: FhirClient) -> None:
    rsps.get(OBS_URL, json=observation())

    assert client.read("Observation", "obs-1") == observation()
    headers = rsps.calls[0].request.headers
    assert headers["Accept"] == "application/fhir+json"
    assert headers["User-Agent"].startswith("diarybridge-fhir-client/")
    assert "Content-Type" not in headers


def test_timeouts_and_tls_verification_on_every_call(
    rsps: responses.RequestsMock, client: FhirClient
) -> None:
    rsps.get(OBS_URL, json=observation())
    rsps.put(OBS_URL, json=observation())
    rsps.post(f"{BASE}/Observation", status=HTTPStatus.CREATED)
    rsps.get(f"{BASE}/Observation", json={"resourceType": "Bundle", "type": "searchset"})
    rsps.delete(OBS_URL, status=HTTPStatus.NO_CONTENT)

    client.read("Observation", "obs-1")
    client.update(observation())
    client.create(observation(None), if_none_exist={"identifier": "urn:x|1"})
    list(client.search("Observation"))
    client.delete("Observation", "obs-1")

    assert len(rsps.calls) == 5
    for call in rsps.calls:
        assert call.request.req_kwargs["timeout"] == (3.0, 20.0)
        assert call.request.req_kwargs["verify"] is True


def test_ca_bundle_path_is_used_for_verification(
    rsps: responses.RequestsMock, tmp_path: Path
) -> None:
    bundle = tmp_path / "clinic-ca.pem"
    bundle.write_text("synthetic")
    rsps.get(OBS_URL, json=observation())

    with FhirClient(BASE, verify=str(bundle)) as fhir:
        fhir.read("Observation", "obs-1")

    assert rsps.calls[0].request.req_kwargs["verify"] == str(bundle)


def test_create_parses_location_and_etag(rsps: responses.RequestsMock, client: FhirClient) -> None:
    rsps.post(
        f"{BASE}/Observation",
        status=HTTPStatus.CREATED,
        headers={
            "Location": f"{BASE}/Observation/srv-42/_history/1",
            "ETag": 'W/"1"',
            "Last-Modified": "Sun, 01 Mar 2026 12:00:00 GMT",
        },
    )

    result = client.create(observation(None))

    assert result.created and result.ok
    assert (result.resource_type, result.id, result.version_id) == ("Observation", "srv-42", "1")
    assert result.etag == 'W/"1"'
    assert result.last_modified == "Sun, 01 Mar 2026 12:00:00 GMT"
    assert result.resource is None
    request = rsps.calls[0].request
    assert request.headers["Content-Type"] == "application/fhir+json; charset=utf-8"
    assert json.loads(request.body) == observation(None)
    assert "If-None-Exist" not in request.headers


def test_conditional_create_sends_if_none_exist(
    rsps: responses.RequestsMock, client: FhirClient
) -> None:
    rsps.post(f"{BASE}/Observation", status=HTTPStatus.OK, json=observation("existing-7"))

    result = client.create(
        observation(None), if_none_exist={"identifier": "https://diarybridge.dev/id|e-1"}
    )

    assert rsps.calls[0].request.headers["If-None-Exist"] == (
        "identifier=https%3A%2F%2Fdiarybridge.dev%2Fid%7Ce-1"
    )
    assert not result.created
    assert result.id == "existing-7"


def test_update_with_if_match_returns_new_version(
    rsps: responses.RequestsMock, client: FhirClient
) -> None:
    returned = {**observation(), "meta": {"versionId": "4"}}
    rsps.put(OBS_URL, json=returned, headers={"ETag": 'W/"4"'})

    result = client.update(observation(), if_match="3", request_id="req-abc")

    request = rsps.calls[0].request
    assert request.headers["If-Match"] == 'W/"3"'
    assert request.headers["X-Request-ID"] == "req-abc"
    assert result.version_id == "4"
    assert result.resource == returned


def test_conditional_update_puts_to_type_with_query(
    rsps: responses.RequestsMock, client: FhirClient
) -> None:
    rsps.put(f"{BASE}/Observation", status=HTTPStatus.CREATED, headers={"ETag": 'W/"1"'})

    result = client.conditional_update(
        observation(None), {"identifier": "urn:sys|e-1"}, headers={"Prefer": "return=minimal"}
    )

    request = rsps.calls[0].request
    assert request.url == f"{BASE}/Observation?identifier=urn%3Asys%7Ce-1"
    assert request.headers["Prefer"] == "return=minimal"
    assert result.created and result.version_id == "1"


def test_malformed_json_is_invalid_response(
    rsps: responses.RequestsMock, client: FhirClient
) -> None:
    rsps.get(OBS_URL, body='{"resourceType": "Observ', content_type="application/fhir+json")

    with pytest.raises(InvalidServerResponse, match="not JSON"):
        client.read("Observation", "obs-1")


def test_wrong_resource_type_is_invalid_response(
    rsps: responses.RequestsMock, client: FhirClient
) -> None:
    rsps.get(OBS_URL, json={"resourceType": "Patient", "id": "obs-1"})

    with pytest.raises(InvalidServerResponse, match="'Patient', expected 'Observation'"):
        client.read("Observation", "obs-1")


def test_write_returning_another_type_is_invalid(
    rsps: responses.RequestsMock, client: FhirClient
) -> None:
    rsps.put(OBS_URL, json={"resourceType": "Patient", "id": "obs-1"})

    with pytest.raises(InvalidServerResponse):
        client.update(observation())


def test_unexpected_redirect_on_write_is_not_followed(
    rsps: responses.RequestsMock, client: FhirClient
) -> None:
    rsps.put(OBS_URL, status=HTTPStatus.FOUND, headers={"Location": "https://elsewhere.test/"})

    with pytest.raises(InvalidServerResponse, match="unexpected 302"):
        client.update(observation())
    assert len(rsps.calls) == 1


@pytest.mark.parametrize("bad_id", ["../Patient/1", "a b", "", "x" * 65])
def test_ids_cannot_escape_the_path(client: FhirClient, bad_id: str) -> None:
    with pytest.raises(ValueError):
        client.read("Observation", bad_id)


def test_base_url_must_be_absolute_http() -> None:
    with pytest.raises(ValueError):
        FhirClient("fhir.clinic.test/fhir")


def test_own_session_is_pooled_and_without_urllib3_retries() -> None:
    fhir = FhirClient(BASE, pool_size=7, retry=RetryPolicy())
    adapter = fhir._session.get_adapter(BASE)
    assert adapter._pool_maxsize == 7  # type: ignore[attr-defined]
    assert adapter.max_retries.total == 0  # type: ignore[attr-defined]
    fhir.close()

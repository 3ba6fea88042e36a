"""Typed writes, each with its precondition, rendered as one request or as a Bundle entry."""

from __future__ import annotations

import json
from http import HTTPStatus

import responses
from fhir_fakes import BASE, observation

from service.fhir_client import (
    ConditionalCreate,
    ConditionalUpdate,
    FhirClient,
    Update,
    bundle_entry,
    token,
)

QUERY = (("identifier", token("https://sid.test/obs", "a|b,c")),)


def test_token_escapes_what_separates_values() -> None:
    assert token("https://sid.test/obs", "a|b,c$d\\e") == "https://sid.test/obs|a\\|b\\,c\\$d\\\\e"


def test_an_update_renders_its_version_as_if_match() -> None:
    update = Update(observation("o1"), if_match="7")
    assert bundle_entry(update, "urn:uuid:1") == {
        "fullUrl": "urn:uuid:1",
        "resource": observation("o1"),
        "request": {"method": "PUT", "url": "Observation/o1", "ifMatch": 'W/"7"'},
    }
    assert Update(observation("o1")).request() == {"method": "PUT", "url": "Observation/o1"}
    assert not update.conditional


def test_conditional_writes_render_their_query() -> None:
    create = ConditionalCreate(observation(None), if_none_exist=QUERY)
    assert create.request() == {
        "method": "POST",
        "url": "Observation",
        "ifNoneExist": "identifier=https://sid.test/obs|a%5C|b%5C%2Cc",
    }
    update = ConditionalUpdate(observation(None), query=QUERY)
    assert update.request() == {
        "method": "PUT",
        "url": "Observation?identifier=https://sid.test/obs|a%5C|b%5C%2Cc",
    }
    assert create.conditional and update.conditional
    assert "fullUrl" not in bundle_entry(create)


def test_each_write_goes_out_as_its_single_request(
    rsps: responses.RequestsMock, client: FhirClient
) -> None:
    created = {"Location": f"{BASE}/Observation/s1/_history/1"}
    rsps.post(f"{BASE}/Observation", status=HTTPStatus.CREATED, headers=created)
    rsps.put(f"{BASE}/Observation", status=HTTPStatus.OK, headers=created)
    rsps.put(f"{BASE}/Observation/s1", status=HTTPStatus.OK, headers=created)

    client.write(ConditionalCreate(observation(None), if_none_exist=QUERY))
    client.write(ConditionalUpdate(observation(None), query=QUERY))
    result = client.write(Update(observation("s1"), if_match="1"))

    post, put_query, put_id = (c.request for c in rsps.calls)
    assert (
        post.headers["If-None-Exist"] == "identifier=https%3A%2F%2Fsid.test%2Fobs%7Ca%5C%7Cb%5C%2Cc"
    )
    assert (
        put_query.url
        == f"{BASE}/Observation?identifier=https%3A%2F%2Fsid.test%2Fobs%7Ca%5C%7Cb%5C%2Cc"
    )
    assert put_id.headers["If-Match"] == 'W/"1"'
    assert json.loads(put_id.body)["id"] == "s1"
    assert result.id == "s1" and result.version_id == "1"

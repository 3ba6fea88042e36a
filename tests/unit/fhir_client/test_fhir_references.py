"""References relative to the server's base: the pure helpers, and the client applying them."""

from __future__ import annotations

from typing import Any

import pytest
import responses
from fhir_fakes import BASE, observation

from service.fhir_client import (
    FhirClient,
    foreign_references,
    is_foreign_reference,
    local_reference,
    normalise_references,
    relative_reference,
)

OTHER = "https://other.clinic.test/fhir"


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        (f"{BASE}/Patient/p-1", "Patient/p-1"),
        (f"{BASE}/Observation/o.1/_history/3", "Observation/o.1/_history/3"),
        ("HTTPS://FHIR.clinic.test:443/fhir/Patient/p-1", "Patient/p-1"),  # same origin
        (f"{BASE}/Patient/p-1?_format=json", "Patient/p-1"),
        ("Patient/p-1", "Patient/p-1"),  # relative already
        ("#product", "#product"),  # contained
        (
            "urn:uuid:4f7c1c3e-1b1e-4d1a-9c55-3c0f3e1f0a01",
            "urn:uuid:4f7c1c3e-1b1e-4d1a-9c55-3c0f3e1f0a01",
        ),
        (f"{OTHER}/Patient/p-1", None),  # another server's patient
        ("http://fhir.clinic.test/fhir/Patient/p-1", None),  # another scheme
        ("https://fhir.clinic.test:8443/fhir/Patient/p-1", None),  # another port
        ("https://fhir.clinic.test/fhirx/Patient/p-1", None),  # a path that only starts alike
        ("https://fhir.clinic.test/Patient/p-1", None),  # above the base
        (f"{BASE}/metadata", None),  # under the base but no Type/id
    ],
)
def test_local_reference(reference: str, expected: str | None) -> None:
    assert local_reference(reference, BASE) == expected


def test_a_base_without_a_path_and_a_trailing_slash_work_alike() -> None:
    assert local_reference("http://127.0.0.1:8103/Patient/x", "http://127.0.0.1:8103") == (
        "Patient/x"
    )
    assert local_reference(f"{BASE}/Patient/x", BASE + "/") == "Patient/x"


def test_normalise_rewrites_every_reference_and_keeps_foreign_ones() -> None:
    resource: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "subject": {"reference": f"{BASE}/Patient/p-1"},
        "performer": [{"actor": {"reference": f"{OTHER}/Practitioner/dr-1", "display": "Dr"}}],
        "partOf": [{"reference": f"{BASE}/MedicationAdministration/ma-1"}],
        "medicationReference": {"reference": "#product"},
        "extension": [{"url": f"{BASE}/Patient/not-a-reference"}],
    }
    before = repr(resource)
    local = normalise_references(resource, BASE)
    assert repr(resource) == before  # a copy: the caller's JSON is not changed
    assert local["subject"] == {"reference": "Patient/p-1"}
    assert local["partOf"] == [{"reference": "MedicationAdministration/ma-1"}]
    assert local["medicationReference"] == {"reference": "#product"}
    assert local["performer"][0]["actor"]["reference"] == f"{OTHER}/Practitioner/dr-1"
    assert local["extension"] == resource["extension"]  # only Reference.reference is touched
    assert foreign_references(local) == [f"{OTHER}/Practitioner/dr-1"]
    assert foreign_references(normalise_references(observation(), BASE)) == []


def subject_of(patient: str) -> dict[str, Any]:
    return {**observation("obs-1"), "subject": {"reference": f"{BASE}/Patient/{patient}"}}


def test_read_and_search_hand_out_relative_references(
    rsps: responses.RequestsMock, client: FhirClient
) -> None:
    rsps.get(f"{BASE}/Observation/obs-1", json=subject_of("p-1"))
    rsps.get(
        f"{BASE}/Observation",
        json={
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"fullUrl": f"{BASE}/Observation/obs-1", "resource": subject_of("p-1")}],
        },
    )
    assert client.read("Observation", "obs-1")["subject"] == {"reference": "Patient/p-1"}
    (found,) = client.search("Observation", {"subject": "Patient/p-1"})
    assert found["subject"] == {"reference": "Patient/p-1"}
    (page,) = client.search_pages("Observation", {"subject": "Patient/p-1"})
    assert page["entry"][0]["fullUrl"] == f"{BASE}/Observation/obs-1"  # URLs stay URLs


def test_write_results_take_ids_from_locations_on_this_server_only(
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
                        "location": f"{BASE}/Observation/obs-0/_history/1",
                        "etag": "1",  # unquoted, as SEKMET writes it
                    },
                    "resource": subject_of("p-1"),
                },
                {
                    "response": {
                        "status": "201 Created",
                        "location": f"{OTHER}/Observation/elsewhere/_history/4",
                    },
                    "resource": {**observation("obs-1"), "meta": {"versionId": "2"}},
                },
            ],
        },
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": observation(f"obs-{i}"),
                "request": {"method": "PUT", "url": f"Observation/obs-{i}"},
            }
            for i in range(2)
        ],
    }
    first, second = client.transaction(bundle)
    assert (first.resource_type, first.id, first.version_id) == ("Observation", "obs-0", "1")
    assert first.resource is not None
    assert first.resource["subject"] == {"reference": "Patient/p-1"}
    # Another base's location is not followed: the id comes from the returned resource.
    assert (second.id, second.version_id) == ("obs-1", "2")

    rsps.put(
        f"{BASE}/Observation/obs-9",
        status=201,
        headers={"Location": f"{BASE}/Observation/obs-9/_history/1", "ETag": 'W/"1"'},
        json=subject_of("p-1"),
    )
    created = client.update(observation("obs-9"))
    assert created.created and (created.id, created.version_id) == ("obs-9", "1")
    assert created.resource is not None
    assert created.resource["subject"] == {"reference": "Patient/p-1"}


# relative_reference: the stricter form exports decide whose a resource is with.
EXPORT_BASE = "http://127.0.0.1:8123/fhir"


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Patient/p-1", "Patient/p-1"),
        ("Patient/p-1/_history/3", "Patient/p-1"),
        (f"{EXPORT_BASE}/Patient/p-1", "Patient/p-1"),
        (f"{EXPORT_BASE}/Patient/p-1/_history/2", "Patient/p-1"),
        (f"{EXPORT_BASE}/Observation/o.7", "Observation/o.7"),
        ("HTTP://127.0.0.1:8123/fhir/Patient/p-1", "Patient/p-1"),  # scheme/host: any case
        ("http://127.0.0.1:8123/fhir/Patient/p-1", "Patient/p-1"),
    ],
)
def test_references_to_our_server_become_type_slash_id(reference: str, expected: str) -> None:
    assert relative_reference(reference, EXPORT_BASE) == expected
    assert (
        relative_reference(reference, EXPORT_BASE + "/") == expected
    )  # a base with a trailing slash
    assert not is_foreign_reference(reference, EXPORT_BASE)


@pytest.mark.parametrize(
    "reference",
    [
        "http://127.0.0.1:9999/fhir/Patient/p-1",  # same host, another port
        "https://127.0.0.1:8123/fhir/Patient/p-1",  # another scheme
        "http://other.example/fhir/Patient/p-1",  # another host
        "http://127.0.0.1:8123/other/Patient/p-1",  # same origin, another base path
        "http://127.0.0.1:8123/fhirx/Patient/p-1",  # a base path that only starts the same
        "http://127.0.0.1:8123/fhir/Patient/p-1?x=1",  # a search, not a literal reference
    ],
)
def test_references_to_another_base_are_foreign_never_the_same_id_here(reference: str) -> None:
    assert relative_reference(reference, EXPORT_BASE) is None
    assert is_foreign_reference(reference, EXPORT_BASE)


@pytest.mark.parametrize(
    "reference", ["", "#contained-1", "urn:uuid:6f1c", "Patient", "Patient/", "patient/p-1"]
)
def test_what_is_no_literal_reference_gives_none_and_is_not_foreign(reference: str) -> None:
    assert relative_reference(reference, EXPORT_BASE) is None
    assert not is_foreign_reference(reference, EXPORT_BASE)


def test_a_base_without_a_path_medplum_style() -> None:
    base = "http://127.0.0.1:8103"
    assert relative_reference("http://127.0.0.1:8103/Patient/p-1", base) == "Patient/p-1"
    assert relative_reference("http://127.0.0.1:80/Patient/p-1", "http://127.0.0.1") == (
        "Patient/p-1"  # the default port written out is the same origin
    )

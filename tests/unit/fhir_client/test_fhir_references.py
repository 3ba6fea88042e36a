"""References made relative to the server's base; another server's references are not ours."""

from __future__ import annotations

import pytest

from service.fhir_client.references import is_foreign_reference, relative_reference

BASE = "http://127.0.0.1:8123/fhir"


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Patient/p-1", "Patient/p-1"),
        ("Patient/p-1/_history/3", "Patient/p-1"),
        (f"{BASE}/Patient/p-1", "Patient/p-1"),
        (f"{BASE}/Patient/p-1/_history/2", "Patient/p-1"),
        (f"{BASE}/Observation/o.7", "Observation/o.7"),
        ("HTTP://127.0.0.1:8123/fhir/Patient/p-1", "Patient/p-1"),  # scheme/host: any case
        ("http://127.0.0.1:8123/fhir/Patient/p-1", "Patient/p-1"),
    ],
)
def test_references_to_our_server_become_type_slash_id(reference: str, expected: str) -> None:
    assert relative_reference(reference, BASE) == expected
    assert relative_reference(reference, BASE + "/") == expected  # a base with a trailing slash
    assert not is_foreign_reference(reference, BASE)


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
    assert relative_reference(reference, BASE) is None
    assert is_foreign_reference(reference, BASE)


@pytest.mark.parametrize(
    "reference", ["", "#contained-1", "urn:uuid:6f1c", "Patient", "Patient/", "patient/p-1"]
)
def test_what_is_no_literal_reference_gives_none_and_is_not_foreign(reference: str) -> None:
    assert relative_reference(reference, BASE) is None
    assert not is_foreign_reference(reference, BASE)


def test_a_base_without_a_path_medplum_style() -> None:
    base = "http://127.0.0.1:8103"
    assert relative_reference("http://127.0.0.1:8103/Patient/p-1", base) == "Patient/p-1"
    assert relative_reference("http://127.0.0.1:80/Patient/p-1", "http://127.0.0.1") == (
        "Patient/p-1"  # the default port written out is the same origin
    )

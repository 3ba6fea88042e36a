"""One normal form for patient keys: references and business identifiers."""

from __future__ import annotations

import pytest

from service.security import parse_patient_key, patient_key


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("123", "Patient/123"),
        ("Patient/123", "Patient/123"),
        (" Patient/abc-1.2 ", "Patient/abc-1.2"),
        ("Patient/123/_history/4", "Patient/123"),
    ],
)
def test_references_and_bare_ids_normalise(reference, expected):
    assert patient_key(reference=reference) == expected


def test_identifier_becomes_system_bar_value():
    key = patient_key(identifier_system=" https://clinic.example.test/mrn ", identifier_value="A|7")
    assert key == "https://clinic.example.test/mrn|A|7"


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"reference": "Patient/1", "identifier_system": "s", "identifier_value": "v"},
        {"reference": "https://fhir.example.test/Patient/1"},
        {"reference": "Group/1"},
        {"reference": "Patient/"},
        {"reference": "a b"},
        {"reference": "x" * 65},
        {"identifier_system": "s"},
        {"identifier_value": "v"},
        {"identifier_system": " ", "identifier_value": "v"},
        {"identifier_system": "a|b", "identifier_value": "v"},
    ],
)
def test_ambiguous_or_malformed_keys_raise(kwargs):
    with pytest.raises(ValueError):
        patient_key(**kwargs)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("123", "Patient/123"),
        ("Patient/123", "Patient/123"),
        ("https://clinic.example.test/mrn|000123", "https://clinic.example.test/mrn|000123"),
    ],
)
def test_configured_keys_parse_in_either_form(text, expected):
    assert parse_patient_key(text) == expected


@pytest.mark.parametrize("text", ["|000123", "https://clinic.example.test/mrn|", "Group/1"])
def test_configured_keys_must_be_complete(text):
    with pytest.raises(ValueError):
        parse_patient_key(text)

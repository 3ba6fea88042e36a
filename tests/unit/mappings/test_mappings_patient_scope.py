"""Record ids per patient (patient-bound apps): two patients' equal ids make distinct resources."""

from __future__ import annotations

import dataclasses

import mappings
from mappings.context import MappingContext
from mappings.identifiers import (
    business_identifier,
    parse_identifier,
    patient_token,
    resource_business_key,
)
from mappings.records import PatientRef
from tests.unit.mappings.samples import ENTRY, INFUSION, NS, SOURCE, ctx

OTHER = PatientRef(reference="Patient/synthetic-mg-002")


def scoped(patient: PatientRef) -> MappingContext:
    key = patient.reference or f"{patient.identifier_system}|{patient.identifier_value}"
    return dataclasses.replace(ctx(), patient_scope=key)


def test_two_patients_with_one_entry_id_get_disjoint_identifiers_and_ids() -> None:
    mine = mappings.record_to_resources(ENTRY, scoped(ENTRY.patient))
    other_entry = dataclasses.replace(ENTRY, patient=OTHER)
    theirs = mappings.record_to_resources(other_entry, scoped(OTHER))
    assert {business_identifier(r) for r in mine}.isdisjoint(business_identifier(r) for r in theirs)
    assert {r["id"] for r in mine}.isdisjoint(r["id"] for r in theirs)
    token = patient_token("Patient/synthetic-mg-001")
    assert business_identifier(mine[0])[1].startswith(f"patient/{token}/diary-entry/")
    assert "synthetic-mg-001" not in business_identifier(mine[0])[1]  # a hash, not the id


def test_unscoped_identifiers_are_as_before() -> None:
    unscoped = mappings.record_to_resources(ENTRY, ctx())
    system, value = business_identifier(unscoped[0])
    assert system == f"https://diarybridge.dev/fhir/sid/{NS}"
    assert value.startswith(f"diary-entry/{ENTRY.entry_id}/")


def test_scoped_round_trip_gives_back_the_apps_own_ids() -> None:
    back = mappings.from_resources(
        mappings.record_to_resources(ENTRY, scoped(ENTRY.patient))
        + mappings.record_to_resources(INFUSION, scoped(INFUSION.patient))
    )
    assert back == [ENTRY, INFUSION]


def test_two_patients_resources_with_one_id_map_back_to_two_records() -> None:
    other_entry = dataclasses.replace(ENTRY, patient=OTHER, fatigue=1)
    mine = mappings.record_to_resources(ENTRY, scoped(ENTRY.patient))
    both = mine + mappings.record_to_resources(other_entry, scoped(OTHER))
    assert sorted(mappings.from_resources(both), key=lambda r: r.patient.reference or "") == [
        ENTRY,
        other_entry,
    ]


def test_scoped_and_unscoped_values_parse_without_ambiguity() -> None:
    system = f"https://diarybridge.dev/fhir/sid/{NS}"
    token = patient_token("Patient/x")
    key = parse_identifier(system, f"patient/{token}/diary-entry/a/b/fatigue")
    assert key is not None and (key.patient_token, key.source_id, key.part) == (
        token,
        "a/b",
        "fatigue",
    )
    # An unscoped record id that itself looks like a scope stays the record id.
    legacy = parse_identifier(system, f"diary-entry/patient/{token}/x/fatigue")
    assert legacy is not None
    assert (legacy.patient_token, legacy.source_id) == ("", f"patient/{token}/x")
    assert parse_identifier(system, "patient/not-a-token/diary-entry/x/fatigue") is None
    assert parse_identifier(system, f"patient/{token}") is None


def test_business_key_of_a_scoped_resource_round_trips_its_identifier() -> None:
    resource = mappings.record_to_resources(ENTRY, scoped(ENTRY.patient))[0]
    key = resource_business_key(resource)
    assert (key.system, key.value) == business_identifier(resource)
    assert resource["meta"]["source"] == SOURCE

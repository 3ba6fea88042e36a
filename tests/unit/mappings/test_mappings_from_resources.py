"""from_resources: grouping, version detection per resource, and the errors it raises."""

from __future__ import annotations

import copy
import json

import pytest

from mappings import business_identifier, from_resources, record_to_resources
from mappings.context import FhirVersion, MappingContext
from mappings.errors import InvalidInput, NotOurResource
from tests.unit.mappings.samples import ENTRY, INFUSION, ctx


def test_records_are_grouped_by_id_when_interleaved() -> None:
    diary = record_to_resources(ENTRY, ctx())
    infusion = record_to_resources(INFUSION, ctx())
    interleaved = [infusion[0], *diary[:5], *infusion[1:3], *diary[5:], *infusion[3:]]
    assert from_resources(interleaved) == [INFUSION, ENTRY]


def test_any_resource_order_gives_back_the_same_entry() -> None:
    # Symptoms come back in Symptom's canonical order (a DiaryEntry keeps them so);
    # medications, premedications and reactions carry their index in the part name.
    resources = record_to_resources(ENTRY, ctx())
    back = from_resources(resources[::-1])[0]
    assert len(ENTRY.symptoms) > 1
    assert back == ENTRY


def test_versions_are_detected_per_resource() -> None:
    mixed = record_to_resources(ENTRY, ctx(FhirVersion.R4)) + record_to_resources(
        INFUSION, ctx(FhirVersion.R5)
    )
    assert from_resources(mixed) == [ENTRY, INFUSION]


def test_same_record_from_two_apps_stays_two_records() -> None:
    other = MappingContext("other-app", "https://other.example", FhirVersion.R4)
    back = from_resources(record_to_resources(ENTRY, ctx()) + record_to_resources(ENTRY, other))
    assert back == [ENTRY, ENTRY]


def test_server_decorations_are_ignored() -> None:
    resources = json.loads(json.dumps(record_to_resources(INFUSION, ctx())))
    for number, res in enumerate(resources):
        res["id"] = f"server-{number}"
        res["meta"].update({"versionId": "3", "lastUpdated": "2026-11-11T10:00:00.000Z"})
    assert from_resources(resources) == [INFUSION]


def test_business_identifier() -> None:
    (obs, *_) = record_to_resources(ENTRY, ctx())
    assert business_identifier(obs) == (
        "https://diarybridge.dev/fhir/sid/mg-diary-app",
        "diary-entry/2026-11-03-evening/mg-adl",
    )


def test_other_resource_types_are_not_ours() -> None:
    with pytest.raises(NotOurResource, match="Patient"):
        from_resources([{"resourceType": "Patient", "id": "p1"}])


def test_observation_without_our_identifier_is_not_ours() -> None:
    foreign = {
        "resourceType": "Observation",
        "id": "x",
        "status": "final",
        "code": {"text": "glucose"},
        "identifier": [{"system": "https://lab.example/ids", "value": "diary-entry/1/fatigue"}],
    }
    with pytest.raises(NotOurResource, match="Observation/x"):
        from_resources([foreign])


def test_structurally_invalid_resource_is_invalid_input() -> None:
    (obs, *_) = record_to_resources(ENTRY, ctx())
    broken = copy.deepcopy(obs)
    broken["status"] = 42
    with pytest.raises(InvalidInput, match="Observation"):
        from_resources([broken])


def test_non_object_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        from_resources(["not a resource"])  # type: ignore[list-item]


def test_infusion_without_its_administration_is_invalid_input() -> None:
    _, *others = record_to_resources(INFUSION, ctx())
    with pytest.raises(InvalidInput, match="MedicationAdministration is missing"):
        from_resources(others)


def test_same_part_twice_is_invalid_input() -> None:
    (obs, *_) = record_to_resources(ENTRY, ctx())
    with pytest.raises(InvalidInput, match="twice"):
        from_resources([obs, copy.deepcopy(obs)])


def test_unknown_code_in_our_resource_is_invalid_input() -> None:
    resources = record_to_resources(ENTRY, ctx())
    symptom = next(r for r in resources if r["identifier"][0]["value"].endswith("symptom-ptosis"))
    symptom["code"]["coding"][0]["code"] = "999999"
    with pytest.raises(InvalidInput, match="symptom"):
        from_resources([symptom])

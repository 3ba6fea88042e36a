"""Collection and transaction Bundles with conditional requests."""

from __future__ import annotations

import pytest

from mappings import collection_bundle, record_to_resources, transaction_bundle
from mappings.context import FhirVersion
from mappings.errors import MappingError
from mappings.records import DiaryEntry
from tests.unit.mappings.samples import ENTRY, INFUSION, PATIENT, ctx

SYSTEM = "https://diarybridge.dev/fhir/sid/mg-diary-app"


def test_collection_bundle_uses_urn_uuid_full_urls() -> None:
    resources = record_to_resources(ENTRY, ctx())
    bundle = collection_bundle(resources, ctx())
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    assert [e["fullUrl"] for e in bundle["entry"]] == [f"urn:uuid:{r['id']}" for r in resources]
    assert [e["resource"] for e in bundle["entry"]] == resources


@pytest.mark.parametrize("version", [FhirVersion.R4, FhirVersion.R5])
def test_conditional_create(version: FhirVersion) -> None:
    resources = record_to_resources(INFUSION, ctx(version))
    bundle = transaction_bundle(resources, ctx(version), "conditional-create")
    assert bundle["type"] == "transaction"
    main, premed, step0, step1, reaction, event = bundle["entry"]
    assert main["request"] == {
        "method": "POST",
        "url": "MedicationAdministration",
        "ifNoneExist": f"identifier={SYSTEM}|infusion/ivig-2026-11-10/administration",
    }
    assert "id" not in main["resource"]
    assert main["fullUrl"] == f"urn:uuid:{resources[0]['id']}"
    # references between our resources point at the fullUrl the server resolves
    assert premed["resource"]["partOf"] == [{"reference": main["fullUrl"]}]
    assert step0["resource"]["partOf"] == [{"reference": main["fullUrl"]}]
    assert step1["resource"]["partOf"] == [{"reference": main["fullUrl"]}]
    suspect = event["resource"]["suspectEntity"][0]
    assert (suspect.get("instance") or suspect["instanceReference"]) == {
        "reference": main["fullUrl"]
    }
    links = event["resource"].get("subjectMedicalHistory") or [
        i["itemReference"] for i in event["resource"]["supportingInfo"]
    ]
    assert links == [{"reference": reaction["fullUrl"]}]
    # R4 AdverseEvent.identifier is one Identifier, not a list: still found for the condition
    assert event["request"]["ifNoneExist"] == (
        f"identifier={SYSTEM}|infusion/ivig-2026-11-10/adverse-event"
    )
    # contained references stay local
    med = main["resource"].get("medicationReference") or main["resource"]["medication"]["reference"]
    assert med == {"reference": "#product"}
    # the input is not modified
    assert resources[0]["id"] and resources[2]["partOf"][0]["reference"].startswith(
        "MedicationAdministration/"
    )


def test_conditional_update() -> None:
    resources = record_to_resources(INFUSION, ctx())
    entry = transaction_bundle(resources, ctx(), "conditional-update")["entry"][2]
    assert entry["request"] == {
        "method": "PUT",
        "url": f"MedicationAdministration?identifier={SYSTEM}|infusion/ivig-2026-11-10/rate-step-0",
    }
    assert "id" not in entry["resource"]
    assert entry["resource"]["partOf"][0]["reference"].startswith("urn:uuid:")


def test_update_as_create_keeps_ids_and_references() -> None:
    resources = record_to_resources(INFUSION, ctx())
    entries = transaction_bundle(resources, ctx(), "update-as-create")["entry"]
    assert [e["request"] for e in entries] == [
        {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"} for r in resources
    ]
    assert [e["resource"] for e in entries] == resources


def test_identifier_value_is_escaped_and_encoded() -> None:
    entry = DiaryEntry("a|b, c$", PATIENT, ENTRY.recorded_at, fatigue=1)
    (bundle_entry,) = transaction_bundle(
        record_to_resources(entry, ctx()), ctx(), "conditional-create"
    )["entry"]
    assert bundle_entry["request"]["ifNoneExist"] == (
        f"identifier={SYSTEM}|diary-entry/a%5C|b%5C%2C%20c%5C%24/fatigue"
    )


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(MappingError, match="upsert"):
        transaction_bundle([], ctx(), "upsert")

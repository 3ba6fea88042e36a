"""Infusion record -> MedicationAdministration (+ premedications, reactions), codes spelt out."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from mappings import from_resources, record_to_resources, resource_id
from mappings.context import FhirVersion
from mappings.records import InfusionStatus, RateStep
from tests.unit.mappings.samples import INFUSION, NS, ctx

SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
EXT = "https://diarybridge.dev/fhir/StructureDefinition/"
MA_ID = resource_id(NS, "infusion", INFUSION.infusion_id, "administration")
MG = {"coding": [{"system": SNOMED, "code": "91637004", "display": "Myasthenia gravis"}]}
PORT = {
    "coding": [
        {
            "system": "https://diarybridge.dev/fhir/CodeSystem/venous-access",
            "code": "port",
            "display": "Implanted venous access port",
        }
    ]
}


def resources(version: FhirVersion, record: Any = INFUSION) -> list[dict[str, Any]]:
    return record_to_resources(record, ctx(version))


def administration(version: FhirVersion, record: Any = INFUSION) -> dict[str, Any]:
    return resources(version, record)[0]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (InfusionStatus.COMPLETED, "completed"),
        (InfusionStatus.IN_PROGRESS, "in-progress"),
        (InfusionStatus.STOPPED, "stopped"),
        (InfusionStatus.NOT_DONE, "not-done"),
    ],
)
def test_status_codes(status: InfusionStatus, code: str) -> None:
    assert administration(FhirVersion.R4, replace(INFUSION, status=status))["status"] == code


def test_status_reason_is_text() -> None:
    assert administration(FhirVersion.R4)["statusReason"] == [
        {"text": "Stopped after headache and chills"}
    ]


@pytest.mark.parametrize("version", [FhirVersion.R4, FhirVersion.R5])
def test_contained_medication_with_lot(version: FhirVersion) -> None:
    ma = administration(version)
    assert ma["contained"][0] == {
        "resourceType": "Medication",
        "id": "product",
        "code": {
            "coding": [
                {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1000000"}
            ],
            "text": "Privigen",
        },
        "batch": {"lotNumber": "P100234"},
    }


def test_r4_shape() -> None:
    ma = administration(FhirVersion.R4)
    assert ma["id"] == MA_ID
    assert ma["medicationReference"] == {"reference": "#product"}
    assert ma["effectivePeriod"] == {
        "start": "2026-11-10T09:00:00+01:00",
        "end": "2026-11-10T13:30:00+01:00",
    }
    assert ma["category"] == {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/medication-admin-category",
                "code": "outpatient",
                "display": "Outpatient",
            }
        ]
    }
    assert ma["reasonCode"] == [MG]
    assert ma["performer"] == [
        {"actor": {"reference": "Practitioner/nurse-7", "display": "Infusion nurse"}}
    ]
    assert ma["device"] == [{"reference": "#access"}]
    assert {"resourceType": "Device", "id": "access", "type": PORT} in ma["contained"]
    assert ma["subject"] == {"identifier": {"system": "https://mrn.example", "value": "MRN-0042"}}


def test_r5_shape() -> None:
    ma = administration(FhirVersion.R5)
    assert ma["medication"] == {"reference": {"reference": "#product"}}
    assert ma["occurencePeriod"] == {
        "start": "2026-11-10T09:00:00+01:00",
        "end": "2026-11-10T13:30:00+01:00",
    }
    assert ma["category"] == [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/medication-admin-location",
                    "code": "outpatient",
                    "display": "Outpatient",
                }
            ]
        }
    ]
    assert ma["reason"] == [{"concept": MG}]
    assert ma["performer"] == [
        {"actor": {"reference": {"reference": "Practitioner/nurse-7", "display": "Infusion nurse"}}}
    ]
    assert ma["device"] == [{"concept": PORT}]
    for r4_only in ("effectivePeriod", "medicationReference", "reasonCode"):
        assert r4_only not in ma


def test_home_setting_is_community() -> None:
    from mappings.records import Setting

    home = replace(INFUSION, setting=Setting.HOME)
    assert administration(FhirVersion.R4, home)["category"]["coding"][0]["code"] == "community"
    assert administration(FhirVersion.R5, home)["category"][0]["coding"][0]["code"] == "community"


def test_dosage_dose_route_text() -> None:
    dosage = administration(FhirVersion.R4)["dosage"]
    assert dosage["dose"] == {"value": 35.0, "unit": "g", "system": UCUM, "code": "g"}
    assert dosage["route"] == {
        "coding": [{"system": SNOMED, "code": "47625008", "display": "Intravenous route"}]
    }
    assert (
        dosage["text"] == "35 g intravenous immunoglobulin (0.5 g/kg at a dosing weight of 70 kg)"
    )
    assert "rateQuantity" not in dosage  # two steps: no single rate


def test_one_rate_step_also_fills_rate_quantity() -> None:
    one = replace(INFUSION, rate_steps=(RateStep(INFUSION.start, 45.0),))
    dosage = administration(FhirVersion.R4, one)["dosage"]
    assert dosage["rateQuantity"] == {"value": 45.0, "unit": "mL/h", "system": UCUM, "code": "mL/h"}


def test_titration_weight_and_volume_extensions() -> None:
    ext = administration(FhirVersion.R4)["extension"]
    assert ext[0] == {
        "url": EXT + "dosing-weight",
        "valueQuantity": {"value": 70.0, "unit": "kg", "system": UCUM, "code": "kg"},
    }
    assert ext[1] == {
        "url": EXT + "infused-volume",
        "valueQuantity": {"value": 350.0, "unit": "mL", "system": UCUM, "code": "mL"},
    }
    assert ext[3] == {
        "url": EXT + "rate-step",
        "extension": [
            {"url": "at", "valueDateTime": "2026-11-10T09:30:00+01:00"},
            {
                "url": "rate",
                "valueQuantity": {"value": 60.0, "unit": "mL/h", "system": UCUM, "code": "mL/h"},
            },
        ],
    }


@pytest.mark.parametrize("version", [FhirVersion.R4, FhirVersion.R5])
def test_premedication_and_reaction_point_at_the_administration(version: FhirVersion) -> None:
    _, premed, reaction = resources(version)
    assert premed["resourceType"] == "MedicationAdministration"
    assert premed["identifier"][0]["value"] == "infusion/ivig-2026-11-10/premedication-0"
    assert premed["partOf"] == [{"reference": f"MedicationAdministration/{MA_ID}"}]
    assert reaction["resourceType"] == "Observation"
    assert reaction["identifier"][0]["value"] == "infusion/ivig-2026-11-10/reaction-0"
    assert reaction["partOf"] == [{"reference": f"MedicationAdministration/{MA_ID}"}]
    assert reaction["code"] == {
        "coding": [{"system": SNOMED, "code": "25064002", "display": "Headache"}]
    }
    assert reaction["valueCodeableConcept"] == {
        "coding": [{"system": SNOMED, "code": "6736007", "display": "Moderate"}]
    }
    assert reaction["effectiveDateTime"] == "2026-11-10T13:00:00+01:00"
    assert "tag" not in reaction["meta"]  # clinic-side data, not patient-reported


@pytest.mark.parametrize("version", [FhirVersion.R4, FhirVersion.R5])
def test_round_trip(version: FhirVersion) -> None:
    assert from_resources(resources(version)) == [INFUSION]


def test_minimal_infusion_round_trips() -> None:
    from mappings.records import InfusionRecord, Product

    minimal = InfusionRecord(
        infusion_id="min",
        patient=INFUSION.patient,
        product=Product(rxnorm="42"),
        dose_g=10.0,
        start=INFUSION.start,
        status=InfusionStatus.IN_PROGRESS,
    )
    ma = administration(FhirVersion.R4, minimal)
    assert "extension" not in ma and "category" not in ma and "device" not in ma
    assert from_resources([ma]) == [minimal]

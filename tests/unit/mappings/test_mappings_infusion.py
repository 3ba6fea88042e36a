"""Infusion record -> MedicationAdministration (+ premedications, reactions), codes spelt out."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from mappings import from_resources, record_to_resources, resource_id
from mappings.context import FhirVersion
from mappings.errors import InvalidInput
from mappings.records import AdverseReaction, InfusionStatus, Severity, Symptom
from tests.unit.mappings.samples import INFUSION, NS, ctx

CET = timezone(timedelta(hours=1))
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
EXT = "https://diarybridge.dev/fhir/StructureDefinition/"
MA_ID = resource_id(NS, "infusion", INFUSION.infusion_id, "administration")
MG = {"coding": [{"system": SNOMED, "code": "91637004", "display": "Myasthenia gravis"}]}
IVIG_ATC = {
    "system": "http://www.whocc.no/atc",
    "code": "J06BA02",
    "display": "immunoglobulins, normal human, for intravascular adm.",
}
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
                {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1000000"},
                IVIG_ATC,
            ],
            "text": "Privigen",
        },
        "batch": {"lotNumber": "P100234"},
    }


def test_product_without_rxnorm_still_carries_the_ivig_atc_code() -> None:
    # A brand the app sends without an RxNorm code: the ATC coding is there all the same,
    # on the infusion and on every titration step, and reading back keeps the brand only.
    record = replace(INFUSION, product=replace(INFUSION.product, rxnorm=None))
    out = resources(FhirVersion.R4, record)
    products = [r["contained"][0] for r in out if r.get("contained")]
    assert len(products) == 1 + len(record.rate_steps)
    assert all(p["code"] == {"coding": [IVIG_ATC], "text": "Privigen"} for p in products)
    assert from_resources(out) == [record]


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
    assert "rateQuantity" not in dosage  # the rates are on the step administrations


def test_weight_and_volume_extensions_and_no_rate_step_extension() -> None:
    ext = administration(FhirVersion.R4)["extension"]
    assert ext == [
        {
            "url": EXT + "dosing-weight",
            "valueQuantity": {"value": 70.0, "unit": "kg", "system": UCUM, "code": "kg"},
        },
        {
            "url": EXT + "infused-volume",
            "valueQuantity": {"value": 350.0, "unit": "mL", "system": UCUM, "code": "mL"},
        },
    ]


def by_part(version: FhirVersion, record: Any = INFUSION) -> dict[str, dict[str, Any]]:
    out = {}
    for res in resources(version, record):
        ident = res["identifier"]
        value = (ident if isinstance(ident, dict) else ident[0])["value"]
        out[value.rsplit("/", 1)[1]] = res
    return out


ROUTE = {"coding": [{"system": SNOMED, "code": "47625008", "display": "Intravenous route"}]}
MA_REF = {"reference": f"MedicationAdministration/{MA_ID}"}


@pytest.mark.parametrize(
    ("version", "period", "medication"),
    [
        (FhirVersion.R4, "effectivePeriod", "medicationReference"),
        (FhirVersion.R5, "occurencePeriod", "medication"),
    ],
)
def test_each_rate_step_is_an_administration_part_of_the_infusion(
    version: FhirVersion, period: str, medication: str
) -> None:
    parts = by_part(version)
    first, second = parts["rate-step-0"], parts["rate-step-1"]
    for step in (first, second):
        assert step["resourceType"] == "MedicationAdministration"
        assert step["partOf"] == [MA_REF]
        assert step["subject"] == {
            "identifier": {"system": "https://mrn.example", "value": "MRN-0042"}
        }
        assert medication in step and step["contained"][0]["batch"] == {"lotNumber": "P100234"}
        assert step["dosage"]["route"] == ROUTE
        assert "dose" not in step["dosage"]  # the total dose stays on the whole infusion
    assert first["id"] == resource_id(NS, "infusion", INFUSION.infusion_id, "rate-step-0")
    assert first["identifier"][0]["value"] == "infusion/ivig-2026-11-10/rate-step-0"
    assert first["dosage"]["rateQuantity"] == {
        "value": 30.0,
        "unit": "mL/h",
        "system": UCUM,
        "code": "mL/h",
    }
    assert first[period] == {
        "start": "2026-11-10T09:00:00+01:00",
        "end": "2026-11-10T09:30:00+01:00",
    }
    assert first["status"] == "completed"  # a later step followed it
    assert second["dosage"]["rateQuantity"]["value"] == 60.0
    # the last step runs until the infusion ended, and ended as the infusion did
    assert second[period] == {
        "start": "2026-11-10T09:30:00+01:00",
        "end": "2026-11-10T13:30:00+01:00",
    }
    assert second["status"] == "stopped"
    whole = parts["administration"]
    assert "rateQuantity" not in whole["dosage"] and whole["dosage"]["dose"]["value"] == 35.0


def test_a_step_after_the_end_gets_an_open_period() -> None:
    late = replace(
        INFUSION,
        end=datetime(2026, 11, 10, 9, 15, tzinfo=INFUSION.start.tzinfo),
    )
    assert by_part(FhirVersion.R4, late)["rate-step-1"]["effectivePeriod"] == {
        "start": "2026-11-10T09:30:00+01:00"
    }
    assert from_resources(resources(FhirVersion.R4, late)) == [late]


def test_legacy_rate_step_extension_is_still_read() -> None:
    parts = by_part(FhirVersion.R4)
    res = [r for part, r in parts.items() if not part.startswith("rate-step-")]
    res[0]["extension"].append(
        {
            "url": EXT + "rate-step",
            "extension": [
                {"url": "at", "valueDateTime": "2026-11-10T09:00:00+01:00"},
                {"url": "rate", "valueQuantity": {"value": 30.0, "unit": "mL/h"}},
            ],
        }
    )
    res[0]["extension"].append(
        {
            "url": EXT + "rate-step",
            "extension": [
                {"url": "at", "valueDateTime": "2026-11-10T09:30:00+01:00"},
                {"url": "rate", "valueQuantity": {"value": 60.0, "unit": "mL/h"}},
            ],
        }
    )
    assert from_resources(res) == [INFUSION]


@pytest.mark.parametrize("version", [FhirVersion.R4, FhirVersion.R5])
def test_premedication_points_at_the_administration_and_reaction_keeps_severity(
    version: FhirVersion,
) -> None:
    parts = by_part(version)
    premed, reaction = parts["premedication-0"], parts["reaction-0"]
    assert premed["resourceType"] == "MedicationAdministration"
    assert premed["identifier"][0]["value"] == "infusion/ivig-2026-11-10/premedication-0"
    assert premed["partOf"] == [MA_REF]
    assert reaction["resourceType"] == "Observation"
    assert reaction["identifier"][0]["value"] == "infusion/ivig-2026-11-10/reaction-0"
    assert "partOf" not in reaction  # a reaction is no step of the infusion: see AdverseEvent
    assert reaction["code"] == {
        "coding": [{"system": SNOMED, "code": "25064002", "display": "Headache"}]
    }
    assert reaction["valueCodeableConcept"] == {
        "coding": [{"system": SNOMED, "code": "6736007", "display": "Moderate"}]
    }
    assert reaction["effectiveDateTime"] == "2026-11-10T13:00:00+01:00"
    assert "tag" not in reaction["meta"]  # clinic-side data, not patient-reported


REACTION_CODE = {
    "coding": [
        {
            "system": "https://diarybridge.dev/fhir/CodeSystem/mg-diary",
            "code": "immunoglobulin-infusion-reaction",
            "display": "Reaction during or after an immunoglobulin infusion (e.g. IVIG flu)",
        }
    ]
}
FLU = (
    AdverseReaction(Symptom.CHILLS, Severity.MILD, datetime(2026, 11, 10, 14, 0, tzinfo=CET)),
    AdverseReaction(Symptom.HEADACHE, Severity.SEVERE, datetime(2026, 11, 10, 15, 0, tzinfo=CET)),
    AdverseReaction(Symptom.FEVER, Severity.MODERATE, datetime(2026, 11, 10, 12, 0, tzinfo=CET)),
)


def test_r4_adverse_event_names_the_infusion_as_suspect() -> None:
    record = replace(INFUSION, adverse_reactions=FLU)
    res = resources(FhirVersion.R4, record)
    ae = res[-1]  # last: written after what it references
    parts = by_part(FhirVersion.R4, record)
    assert ae["resourceType"] == "AdverseEvent"
    assert ae["id"] == resource_id(NS, "infusion", INFUSION.infusion_id, "adverse-event")
    assert ae["identifier"] == {  # 0..1 in R4
        "use": "official",
        "system": "https://diarybridge.dev/fhir/sid/" + NS,
        "value": "infusion/ivig-2026-11-10/adverse-event",
    }
    assert ae["actuality"] == "actual"
    assert ae["event"] == REACTION_CODE
    assert ae["subject"] == {"identifier": {"system": "https://mrn.example", "value": "MRN-0042"}}
    assert ae["date"] == "2026-11-10T12:00:00+01:00"  # the first onset (fever)
    assert ae["severity"] == {  # the worst symptom (headache)
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/adverse-event-severity",
                "code": "severe",
                "display": "Severe",
            }
        ]
    }
    assert ae["suspectEntity"] == [{"instance": MA_REF}]
    assert ae["subjectMedicalHistory"] == [
        {"reference": f"Observation/{parts[f'reaction-{i}']['id']}"} for i in range(3)
    ]
    for r5_only in ("status", "code", "occurrenceDateTime", "supportingInfo"):
        assert r5_only not in ae
    assert from_resources(res) == [record]


def test_r5_adverse_event_has_status_code_occurrence_and_supporting_info() -> None:
    record = replace(INFUSION, adverse_reactions=FLU)
    parts = by_part(FhirVersion.R5, record)
    ae = parts["adverse-event"]
    assert ae["identifier"][0]["value"] == "infusion/ivig-2026-11-10/adverse-event"
    assert ae["status"] == "completed"
    assert ae["actuality"] == "actual"
    assert ae["code"] == REACTION_CODE
    assert ae["occurrenceDateTime"] == "2026-11-10T12:00:00+01:00"
    assert ae["suspectEntity"] == [{"instanceReference": MA_REF}]
    assert ae["supportingInfo"] == [
        {"itemReference": {"reference": f"Observation/{parts[f'reaction-{i}']['id']}"}}
        for i in range(3)
    ]
    for r4_only in ("event", "date", "severity", "subjectMedicalHistory"):
        assert r4_only not in ae  # R5 has no severity: the symptoms carry theirs
    assert from_resources(list(parts.values())) == [record]


def test_no_reactions_no_adverse_event() -> None:
    quiet = replace(INFUSION, adverse_reactions=())
    assert all(r["resourceType"] != "AdverseEvent" for r in resources(FhirVersion.R4, quiet))


@pytest.mark.parametrize("version", [FhirVersion.R4, FhirVersion.R5])
def test_an_adverse_event_without_a_suspect_is_refused(version: FhirVersion) -> None:
    res = resources(version)
    del res[-1]["suspectEntity"]
    with pytest.raises(InvalidInput):
        from_resources(res)


def test_an_adverse_event_alone_does_not_invent_reactions() -> None:
    res = [r for r in resources(FhirVersion.R4) if r["resourceType"] != "Observation"]
    assert from_resources(res) == [replace(INFUSION, adverse_reactions=())]


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

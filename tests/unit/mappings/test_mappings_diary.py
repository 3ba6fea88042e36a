"""Diary entry -> Observations / MedicationAdministrations, with every code spelt out."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from mappings import from_resources, record_to_resources, resource_id
from mappings.context import FhirVersion
from mappings.errors import MappingError
from mappings.records import DiaryEntry, Severity, Symptom, SymptomRating, VitalSigns
from tests.unit.mappings.samples import ENTRY, NS, PATIENT, SOURCE, ctx

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
LOCAL = "https://diarybridge.dev/fhir/CodeSystem/mg-diary"
VITAL_SIGNS = [
    {"coding": [{"system": OBS_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}
]
SURVEY = [{"coding": [{"system": OBS_CATEGORY, "code": "survey", "display": "Survey"}]}]


def by_part(version: FhirVersion = FhirVersion.R4) -> dict[str, dict[str, Any]]:
    return {
        r["identifier"][0]["value"].rsplit("/", 1)[1]: r
        for r in record_to_resources(ENTRY, ctx(version))
    }


def test_one_resource_per_part() -> None:
    assert list(by_part()) == [
        "mg-adl",
        "fatigue",
        "muscle-weakness",
        "symptom-ptosis",
        "symptom-arm_weakness",
        "vital-body-temperature",
        "vital-heart-rate",
        "vital-blood-pressure",
        "vital-body-weight",
        "vital-spo2",
        "flare-up",
        "fluids",
        "note",
        "medication-0",
        "medication-1",
    ]


def test_envelope_identifier_id_source_subject_and_patient_as_performer() -> None:
    obs = by_part()["fatigue"]
    assert obs["identifier"] == [
        {
            "use": "official",
            "system": "https://diarybridge.dev/fhir/sid/mg-diary-app",
            "value": "diary-entry/2026-11-03-evening/fatigue",
        }
    ]
    expected_id = str(
        uuid.uuid5(
            uuid.NAMESPACE_URL,
            "https://diarybridge.dev/fhir/sid/mg-diary-app|diary-entry/2026-11-03-evening/fatigue",
        )
    )
    assert obs["id"] == expected_id == resource_id(NS, "diary-entry", ENTRY.entry_id, "fatigue")
    assert obs["meta"]["source"] == SOURCE
    assert obs["meta"]["tag"] == [
        {
            "system": "https://diarybridge.dev/fhir/CodeSystem/provenance",
            "code": "patient-reported",
            "display": "Reported by the patient",
        }
    ]
    assert obs["status"] == "final"
    assert obs["subject"] == {"reference": "Patient/synthetic-mg-001"}
    assert obs["performer"] == [{"reference": "Patient/synthetic-mg-001"}]
    assert obs["effectiveDateTime"] == "2026-11-03T20:15:00+05:45"


def test_ids_are_deterministic() -> None:
    first = [r["id"] for r in record_to_resources(ENTRY, ctx())]
    again = [r["id"] for r in record_to_resources(ENTRY, ctx())]
    assert first == again
    assert len(set(first)) == len(first)


def test_mg_adl_total_and_items() -> None:
    obs = by_part()["mg-adl"]
    assert obs["code"] == {
        "coding": [
            {"system": LOCAL, "code": "mg-adl-total", "display": "MG-ADL total score (0-24)"}
        ]
    }
    assert obs["category"] == SURVEY
    assert obs["valueInteger"] == 8
    assert len(obs["component"]) == 8
    assert obs["component"][4] == {
        "code": {
            "coding": [
                {
                    "system": LOCAL,
                    "code": "mg-adl-brushing-teeth-or-combing-hair",
                    "display": "MG-ADL impairment of ability to brush teeth or comb hair (0-3)",
                }
            ]
        },
        "valueInteger": 2,
    }


def test_fatigue_and_weakness_are_survey_integers() -> None:
    parts = by_part()
    assert parts["fatigue"]["valueInteger"] == 6
    assert parts["fatigue"]["code"]["coding"][0]["code"] == "fatigue-0-10"
    assert parts["muscle-weakness"]["valueInteger"] == 5
    assert parts["muscle-weakness"]["category"] == SURVEY


def test_symptom_snomed_with_snomed_severity() -> None:
    obs = by_part()["symptom-ptosis"]
    assert obs["code"] == {
        "coding": [{"system": SNOMED, "code": "11934000", "display": "Ptosis of eyelid"}]
    }
    assert obs["valueCodeableConcept"] == {
        "coding": [{"system": SNOMED, "code": "6736007", "display": "Moderate"}]
    }
    assert obs["category"] == SURVEY
    mild = by_part()["symptom-arm_weakness"]["valueCodeableConcept"]
    assert mild == {"coding": [{"system": SNOMED, "code": "255604002", "display": "Mild"}]}


def test_body_temperature() -> None:
    obs = by_part()["vital-body-temperature"]
    assert obs["code"] == {
        "coding": [{"system": LOINC, "code": "8310-5", "display": "Body temperature"}]
    }
    assert obs["valueQuantity"] == {"value": 36.8, "unit": "C", "system": UCUM, "code": "Cel"}
    assert obs["category"] == VITAL_SIGNS
    assert obs["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/bodytemp"]


def test_heart_rate() -> None:
    obs = by_part()["vital-heart-rate"]
    assert obs["code"] == {"coding": [{"system": LOINC, "code": "8867-4", "display": "Heart rate"}]}
    assert obs["valueQuantity"] == {
        "value": 76,
        "unit": "beats/minute",
        "system": UCUM,
        "code": "/min",
    }
    assert obs["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/heartrate"]


def test_blood_pressure_panel() -> None:
    obs = by_part()["vital-blood-pressure"]
    assert obs["code"]["coding"] == [
        {
            "system": LOINC,
            "code": "85354-9",
            "display": "Blood pressure panel with all children optional",
        }
    ]
    assert "valueQuantity" not in obs
    assert obs["component"] == [
        {
            "code": {
                "coding": [
                    {"system": LOINC, "code": "8480-6", "display": "Systolic blood pressure"}
                ]
            },
            "valueQuantity": {"value": 124, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
        },
        {
            "code": {
                "coding": [
                    {"system": LOINC, "code": "8462-4", "display": "Diastolic blood pressure"}
                ]
            },
            "valueQuantity": {"value": 82, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
        },
    ]
    assert obs["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/bp"]


def test_body_weight_and_spo2() -> None:
    parts = by_part()
    weight = parts["vital-body-weight"]
    assert weight["code"]["coding"] == [
        {"system": LOINC, "code": "29463-7", "display": "Body weight"}
    ]
    assert weight["valueQuantity"] == {"value": 71.5, "unit": "kg", "system": UCUM, "code": "kg"}
    spo2 = parts["vital-spo2"]
    assert spo2["code"]["coding"] == [
        {
            "system": LOINC,
            "code": "59408-5",
            "display": "Oxygen saturation in Arterial blood by Pulse oximetry",
        },
        {"system": LOINC, "code": "2708-6", "display": "Oxygen saturation in Arterial blood"},
    ]
    assert spo2["valueQuantity"] == {"value": 97, "unit": "%", "system": UCUM, "code": "%"}
    assert spo2["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/oxygensat"]


def test_flare_up_fluids_note() -> None:
    parts = by_part()
    assert parts["flare-up"]["valueBoolean"] is False
    assert parts["fluids"]["code"]["coding"] == [
        {"system": LOINC, "code": "75301-2", "display": "Fluid intake 24 hour Estimated"}
    ]
    assert parts["fluids"]["valueQuantity"] == {
        "value": 1800,
        "unit": "mL/24h",
        "system": UCUM,
        "code": "mL/(24.h)",
    }
    assert parts["note"]["code"]["coding"][0] == {
        "system": LOCAL,
        "code": "diary-note",
        "display": "Free-text diary note",
    }
    assert parts["note"]["valueString"] == "Worse in the evening."


def test_medication_r4() -> None:
    ma = by_part(FhirVersion.R4)["medication-0"]
    assert ma["resourceType"] == "MedicationAdministration"
    assert ma["status"] == "completed"
    assert ma["medicationCodeableConcept"] == {
        "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "203150"}],
        "text": "Pyridostigmine 60 mg tablet",
    }
    assert ma["effectiveDateTime"] == "2026-11-03T08:00:00+05:45"
    assert ma["performer"] == [{"actor": {"reference": "Patient/synthetic-mg-001"}}]
    assert ma["dosage"] == {"dose": {"value": 60.0, "unit": "mg", "system": UCUM, "code": "mg"}}
    assert ma["extension"] == [
        {
            "url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-MedicationAdministration.recorded",
            "valueDateTime": "2026-11-03T20:15:00+05:45",
        }
    ]


def test_medication_r5() -> None:
    ma = by_part(FhirVersion.R5)["medication-0"]
    assert ma["medication"] == {
        "concept": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "203150"}],
            "text": "Pyridostigmine 60 mg tablet",
        }
    }
    assert ma["occurenceDateTime"] == "2026-11-03T08:00:00+05:45"
    assert ma["recorded"] == "2026-11-03T20:15:00+05:45"
    assert ma["performer"] == [{"actor": {"reference": {"reference": "Patient/synthetic-mg-001"}}}]
    assert "effectiveDateTime" not in ma and "medicationCodeableConcept" not in ma


def test_medication_without_time_uses_entry_time_and_says_so() -> None:
    ma = by_part()["medication-1"]
    assert ma["effectiveDateTime"] == "2026-11-03T20:15:00+05:45"
    assert {
        "url": "https://diarybridge.dev/fhir/StructureDefinition/time-not-reported",
        "valueBoolean": True,
    } in ma["extension"]
    assert "dosage" not in ma


def test_identifier_patient_reference() -> None:
    entry = DiaryEntry(
        entry_id="e1",
        patient=type(PATIENT)(identifier_system="https://mrn.example", identifier_value="M-1"),
        recorded_at=ENTRY.recorded_at,
        fatigue=2,
    )
    (obs,) = record_to_resources(entry, ctx())
    assert obs["subject"] == {"identifier": {"system": "https://mrn.example", "value": "M-1"}}
    assert from_resources([obs]) == [entry]


@pytest.mark.parametrize("version", [FhirVersion.R4, FhirVersion.R5])
def test_note_only_and_medication_only_entries_round_trip(version: FhirVersion) -> None:
    note_only = DiaryEntry("n1", PATIENT, ENTRY.recorded_at, note="only a note")
    meds_only = DiaryEntry("m1", PATIENT, ENTRY.recorded_at, medications=ENTRY.medications)
    resources = record_to_resources(note_only, ctx(version)) + record_to_resources(
        meds_only, ctx(version)
    )
    assert from_resources(resources) == [note_only, meds_only]


def test_blood_pressure_with_one_value_round_trips() -> None:
    entry = DiaryEntry("bp1", PATIENT, ENTRY.recorded_at, vitals=VitalSigns(systolic_mmhg=130))
    (obs,) = record_to_resources(entry, ctx())
    assert "profile" not in obs["meta"]  # the bp profile needs both values
    assert from_resources([obs]) == [entry]


def test_same_symptom_twice_is_refused() -> None:
    twice = DiaryEntry(
        "s2",
        PATIENT,
        ENTRY.recorded_at,
        symptoms=(
            SymptomRating(Symptom.NAUSEA, Severity.MILD),
            SymptomRating(Symptom.NAUSEA, Severity.SEVERE),
        ),
    )
    with pytest.raises(MappingError, match="nausea"):
        record_to_resources(twice, ctx())


def test_full_entry_round_trips() -> None:
    for version in (FhirVersion.R4, FhirVersion.R5):
        assert from_resources(record_to_resources(ENTRY, ctx(version))) == [ENTRY]


def test_naive_datetime_is_refused() -> None:
    naive = DiaryEntry("nv", PATIENT, ENTRY.recorded_at.replace(tzinfo=None), fatigue=1)
    with pytest.raises(MappingError, match="timezone-aware"):
        record_to_resources(naive, ctx())


def test_a_known_substance_is_coded_in_atc_beside_the_apps_rxnorm() -> None:
    from mappings.medications import medication_concept, read_medication_concept

    concept = medication_concept("Cetirizine 10 mg tablet", "203150")
    assert concept["coding"] == [
        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "203150"},
        {"system": "http://www.whocc.no/atc", "code": "R06AE07", "display": "cetirizine"},
    ]
    assert concept["text"] == "Cetirizine 10 mg tablet"
    # The ATC coding is derived from the name: reading back gives the record as sent.
    assert read_medication_concept(concept) == ("Cetirizine 10 mg tablet", "203150")

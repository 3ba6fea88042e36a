"""Hand-written synthetic records for the literal unit tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from mappings.context import FhirVersion, MappingContext
from mappings.records import (
    Access,
    AdverseReaction,
    DiaryEntry,
    InfusionRecord,
    InfusionStatus,
    MedicationTaken,
    MgAdl,
    PatientRef,
    Performer,
    Product,
    RateStep,
    Setting,
    Severity,
    Symptom,
    SymptomRating,
    VitalSigns,
)

KATHMANDU = timezone(timedelta(hours=5, minutes=45))
CET = timezone(timedelta(hours=1))
PATIENT = PatientRef(reference="Patient/synthetic-mg-001")
SOURCE = "https://diary-app.example/v2"
NS = "mg-diary-app"


def ctx(version: FhirVersion = FhirVersion.R4) -> MappingContext:
    return MappingContext(app_namespace=NS, source=SOURCE, fhir_version=version)


ENTRY = DiaryEntry(
    entry_id="2026-11-03-evening",
    patient=PATIENT,
    recorded_at=datetime(2026, 11, 3, 20, 15, tzinfo=KATHMANDU),
    mg_adl=MgAdl(1, 1, 0, 0, 2, 1, 1, 2),
    fatigue=6,
    muscle_weakness=5,
    symptoms=(
        SymptomRating(Symptom.PTOSIS, Severity.MODERATE),
        SymptomRating(Symptom.ARM_WEAKNESS, Severity.MILD),
    ),
    vitals=VitalSigns(
        body_temperature_c=36.8,
        heart_rate_bpm=76,
        systolic_mmhg=124,
        diastolic_mmhg=82,
        body_weight_kg=71.5,
        spo2_percent=97,
    ),
    flare_up=False,
    fluids_ml=1800,
    medications=(
        MedicationTaken(
            name="Pyridostigmine 60 mg tablet",
            rxnorm="203150",
            dose=60.0,
            dose_unit="mg",
            taken_at=datetime(2026, 11, 3, 8, 0, tzinfo=KATHMANDU),
        ),
        MedicationTaken(name="Prednisolone"),
    ),
    note="Worse in the evening.",
)

INFUSION = InfusionRecord(
    infusion_id="ivig-2026-11-10",
    patient=PatientRef(identifier_system="https://mrn.example", identifier_value="MRN-0042"),
    product=Product(brand="Privigen", rxnorm="1000000"),
    dose_g=35.0,
    start=datetime(2026, 11, 10, 9, 0, tzinfo=CET),
    end=datetime(2026, 11, 10, 13, 30, tzinfo=CET),
    status=InfusionStatus.STOPPED,
    lot_number="P100234",
    dosing_weight_kg=70.0,
    volume_ml=350.0,
    rate_steps=(
        RateStep(datetime(2026, 11, 10, 9, 0, tzinfo=CET), 30.0),
        RateStep(datetime(2026, 11, 10, 9, 30, tzinfo=CET), 60.0),
    ),
    access=Access.PORT,
    setting=Setting.INFUSION_CENTRE,
    status_reason="Stopped after headache and chills",
    premedications=(MedicationTaken(name="Paracetamol", dose=1000.0, dose_unit="mg"),),
    performer=Performer(reference="Practitioner/nurse-7", display="Infusion nurse"),
    adverse_reactions=(
        AdverseReaction(
            Symptom.HEADACHE, Severity.MODERATE, datetime(2026, 11, 10, 13, 0, tzinfo=CET)
        ),
    ),
    note="Rate held at 60 mL/h.",
)

"""The golden input records: a diary week of one synthetic patient and a two-day IVIG course."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

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
    Record,
    Setting,
    Severity,
    Symptom,
    SymptomRating,
    VitalSigns,
)

BERLIN = timezone(timedelta(hours=1))
PATIENT = PatientRef(reference="Patient/synthetic-mg-001")
APP = "mg-diary-app"
SOURCE = "https://diary-app.example/v2"


def _pyridostigmine(day: int, hour: int) -> MedicationTaken:
    return MedicationTaken(
        name="Pyridostigmine bromide 60 mg tablet",
        # No RxNorm code: we carry only codes verified at their source, and the realistic
        # golden data should not show an unverified one (unit tests cover the pass-through).
        dose=60.0,
        dose_unit="mg",
        taken_at=datetime(2026, 11, day, hour, 0, tzinfo=BERLIN),
    )


def _entry(
    day: int, adl: tuple[int, ...], fatigue: int, weakness: int, **parts: object
) -> DiaryEntry:
    return DiaryEntry(
        entry_id=f"2026-11-{day:02d}-evening",
        patient=PATIENT,
        recorded_at=datetime(2026, 11, day, 20, 30, tzinfo=BERLIN),
        mg_adl=MgAdl(*adl),
        fatigue=fatigue,
        muscle_weakness=weakness,
        medications=(_pyridostigmine(day, 8), _pyridostigmine(day, 14)),
        **parts,  # type: ignore[arg-type]
    )


DIARY_WEEK: tuple[DiaryEntry, ...] = (
    _entry(
        2,
        (1, 1, 0, 0, 1, 1, 1, 2),
        5,
        4,
        symptoms=(SymptomRating(Symptom.PTOSIS, Severity.MILD),),
        vitals=VitalSigns(
            body_temperature_c=36.6,
            heart_rate_bpm=72,
            systolic_mmhg=122,
            diastolic_mmhg=78,
            body_weight_kg=71.4,
            spo2_percent=98,
        ),
        fluids_ml=1800,
    ),
    _entry(
        3,
        (1, 1, 1, 0, 1, 1, 2, 2),
        6,
        5,
        symptoms=(
            SymptomRating(Symptom.PTOSIS, Severity.MODERATE),
            SymptomRating(Symptom.DOUBLE_VISION, Severity.MILD),
        ),
        vitals=VitalSigns(heart_rate_bpm=76, systolic_mmhg=126, diastolic_mmhg=80),
        fluids_ml=1500,
        note="Double vision while reading in the evening.",
    ),
    _entry(
        4,
        (2, 2, 1, 1, 2, 1, 2, 2),
        7,
        6,
        symptoms=(
            SymptomRating(Symptom.PTOSIS, Severity.MODERATE),
            SymptomRating(Symptom.TROUBLE_CHEWING, Severity.MILD),
            SymptomRating(Symptom.ARM_WEAKNESS, Severity.MODERATE),
        ),
        flare_up=True,
        fluids_ml=1400,
    ),
    _entry(
        5,
        (2, 2, 2, 1, 2, 2, 2, 3),
        8,
        7,
        symptoms=(
            SymptomRating(Symptom.PTOSIS, Severity.SEVERE),
            SymptomRating(Symptom.TROUBLE_SWALLOWING, Severity.MODERATE),
            SymptomRating(Symptom.SHORTNESS_OF_BREATH, Severity.MILD),
            SymptomRating(Symptom.LEG_WEAKNESS, Severity.MODERATE),
        ),
        vitals=VitalSigns(body_temperature_c=36.9, heart_rate_bpm=84, spo2_percent=95),
        flare_up=True,
        fluids_ml=1200,
        note="Called the clinic; IVIG moved forward.",
    ),
    _entry(
        6,
        (2, 1, 1, 1, 2, 1, 2, 2),
        7,
        6,
        symptoms=(SymptomRating(Symptom.PTOSIS, Severity.MODERATE),),
        flare_up=True,
        fluids_ml=2200,
    ),
    _entry(
        7,
        (1, 1, 1, 0, 1, 1, 1, 2),
        6,
        5,
        symptoms=(
            SymptomRating(Symptom.HEADACHE, Severity.MODERATE),
            SymptomRating(Symptom.CHILLS, Severity.MILD),
            SymptomRating(Symptom.MUSCLE_ACHES, Severity.MILD),
        ),
        vitals=VitalSigns(body_temperature_c=37.9, heart_rate_bpm=88),
        fluids_ml=2500,
        note="IVIG day 2 today; headache since the evening.",
    ),
    _entry(
        8,
        (1, 0, 0, 0, 1, 0, 1, 1),
        4,
        3,
        symptoms=(
            SymptomRating(Symptom.HEADACHE, Severity.MILD),
            SymptomRating(Symptom.NAUSEA, Severity.MILD),
            SymptomRating(Symptom.FEVER, Severity.MILD),
        ),
        vitals=VitalSigns(body_temperature_c=37.4, body_weight_kg=71.0),
        flare_up=False,
        fluids_ml=2400,
    ),
)

_PRODUCT = Product(brand="Privigen")  # brand only: see _pyridostigmine on RxNorm codes
_NURSE = Performer(reference="Practitioner/synthetic-nurse-7", display="Infusion nurse")
_PREMEDS = (
    MedicationTaken(
        name="Paracetamol",
        dose=1000.0,
        dose_unit="mg",
        taken_at=datetime(2026, 11, 6, 8, 30, tzinfo=BERLIN),
    ),
    MedicationTaken(name="Cetirizine", dose=10.0, dose_unit="mg"),
)


def _day(day: int, start_hour: int) -> datetime:
    return datetime(2026, 11, day, start_hour, 0, tzinfo=BERLIN)


IVIG_COURSE: tuple[InfusionRecord, ...] = (
    InfusionRecord(
        infusion_id="ivig-course-3-day-1",
        patient=PATIENT,
        product=_PRODUCT,
        dose_g=70.0,
        start=_day(6, 9),
        end=datetime(2026, 11, 6, 13, 15, tzinfo=BERLIN),
        status=InfusionStatus.COMPLETED,
        lot_number="P2026-0412",
        dosing_weight_kg=70.0,
        volume_ml=700.0,
        rate_steps=(
            RateStep(_day(6, 9), 42.0),
            RateStep(datetime(2026, 11, 6, 9, 30, tzinfo=BERLIN), 84.0),
            RateStep(datetime(2026, 11, 6, 10, 0, tzinfo=BERLIN), 168.0),
            RateStep(datetime(2026, 11, 6, 10, 30, tzinfo=BERLIN), 252.0),
        ),
        access=Access.PERIPHERAL,
        setting=Setting.INFUSION_CENTRE,
        premedications=_PREMEDS,
        performer=_NURSE,
        note="Day 1 of 2 (2 g/kg course). Tolerated titration to 252 mL/h.",
    ),
    InfusionRecord(
        infusion_id="ivig-course-3-day-2",
        patient=PATIENT,
        product=_PRODUCT,
        dose_g=70.0,
        start=_day(7, 9),
        end=datetime(2026, 11, 7, 12, 45, tzinfo=BERLIN),
        status=InfusionStatus.COMPLETED,
        lot_number="P2026-0412",
        dosing_weight_kg=70.0,
        volume_ml=700.0,
        rate_steps=(
            RateStep(_day(7, 9), 84.0),
            RateStep(datetime(2026, 11, 7, 9, 30, tzinfo=BERLIN), 168.0),
            RateStep(datetime(2026, 11, 7, 10, 0, tzinfo=BERLIN), 252.0),
        ),
        access=Access.PERIPHERAL,
        setting=Setting.INFUSION_CENTRE,
        premedications=(
            MedicationTaken(
                name="Paracetamol",
                dose=1000.0,
                dose_unit="mg",
                taken_at=datetime(2026, 11, 7, 8, 30, tzinfo=BERLIN),
            ),
        ),
        performer=_NURSE,
        adverse_reactions=(  # "IVIG flu" the evening after the second day
            AdverseReaction(
                Symptom.HEADACHE, Severity.MODERATE, datetime(2026, 11, 7, 19, 0, tzinfo=BERLIN)
            ),
            AdverseReaction(
                Symptom.CHILLS, Severity.MILD, datetime(2026, 11, 7, 21, 0, tzinfo=BERLIN)
            ),
            AdverseReaction(
                Symptom.MUSCLE_ACHES, Severity.MILD, datetime(2026, 11, 8, 7, 0, tzinfo=BERLIN)
            ),
        ),
        note="Day 2 of 2. IVIG-flu symptoms reported by phone.",
    ),
)

CASES: dict[str, tuple[Record, ...]] = {"diary_week": DIARY_WEEK, "ivig_two_days": IVIG_COURSE}
# Two days of the week again, with the MG-ADL also as a QuestionnaireResponse (SDC).
CASES["mg_adl_questionnaire"] = DIARY_WEEK[3:5]
CASE_OPTIONS: dict[str, dict[str, bool]] = {
    "mg_adl_questionnaire": {"mg_adl_questionnaire_response": True}
}

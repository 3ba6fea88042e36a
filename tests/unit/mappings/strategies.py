"""Hypothesis strategies for our records (shared with the service tests)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import strategies as st

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

# FHIR allows offsets from -13:59 to +14:00 in whole minutes; keep to the real-world span.
offsets = st.integers(min_value=-12 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
aware_datetimes = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2080, 12, 31), timezones=offsets
)

# Printable text without surrounding whitespace: FHIR strings must not be blank.
text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")),
    min_size=1,
    max_size=40,
).filter(lambda s: s == s.strip() and s != "")

source_ids = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._/:",
    min_size=1,
    max_size=24,
)
fhir_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=24)
rxnorm_codes = st.integers(min_value=1, max_value=9_999_999).map(str)

patients = st.one_of(
    fhir_ids.map(lambda i: PatientRef(reference=f"Patient/{i}")),
    st.builds(
        PatientRef,
        identifier_system=st.sampled_from(
            ["urn:oid:1.2.36.146.595.217.0.1", "https://mrn.example"]
        ),
        identifier_value=text,
    ),
)


def _floats(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)


mg_adl = st.builds(MgAdl, *[st.integers(0, 3) for _ in range(8)])
symptom_ratings = st.lists(
    st.builds(SymptomRating, st.sampled_from(Symptom), st.sampled_from(Severity)),
    unique_by=lambda r: r.symptom,
    max_size=4,
).map(tuple)


@st.composite
def vital_signs(draw: st.DrawFn) -> VitalSigns:
    """Vital signs with at least one value; blood pressure both or neither."""
    bp = draw(st.none() | st.tuples(st.integers(60, 250), st.integers(30, 150)))
    vitals = VitalSigns(
        body_temperature_c=draw(st.none() | _floats(30.0, 45.0)),
        heart_rate_bpm=draw(st.none() | st.integers(20, 250)),
        systolic_mmhg=bp[0] if bp else None,
        diastolic_mmhg=bp[1] if bp else None,
        body_weight_kg=draw(st.none() | _floats(1.0, 300.0)),
        spo2_percent=draw(st.none() | st.integers(50, 100)),
    )
    if vitals == VitalSigns():
        return VitalSigns(heart_rate_bpm=draw(st.integers(20, 250)))
    return vitals


medications_taken = st.builds(
    MedicationTaken,
    name=text,
    rxnorm=st.none() | rxnorm_codes,
    dose=st.none() | _floats(0.001, 5000.0),
    dose_unit=st.none() | st.sampled_from(["mg", "g", "mL", "[iU]", "ug"]),
    taken_at=st.none() | aware_datetimes,
)


@st.composite
def diary_entries(draw: st.DrawFn) -> DiaryEntry:
    """A diary entry with at least one part present."""
    entry = DiaryEntry(
        entry_id=draw(source_ids),
        patient=draw(patients),
        recorded_at=draw(aware_datetimes),
        mg_adl=draw(st.none() | mg_adl),
        fatigue=draw(st.none() | st.integers(0, 10)),
        muscle_weakness=draw(st.none() | st.integers(0, 10)),
        symptoms=draw(symptom_ratings),
        vitals=draw(st.none() | vital_signs()),
        flare_up=draw(st.none() | st.booleans()),
        fluids_ml=draw(st.none() | st.integers(0, 10_000)),
        medications=tuple(draw(st.lists(medications_taken, max_size=3))),
        note=draw(st.none() | text),
    )
    empty = DiaryEntry(entry.entry_id, entry.patient, entry.recorded_at)
    if entry == empty:
        return DiaryEntry(entry.entry_id, entry.patient, entry.recorded_at, note=draw(text))
    return entry


products = st.one_of(
    st.builds(Product, brand=text, rxnorm=st.none() | rxnorm_codes),
    st.builds(Product, brand=st.none(), rxnorm=rxnorm_codes),
)
performers = st.one_of(
    st.builds(
        Performer, reference=fhir_ids.map(lambda i: f"Practitioner/{i}"), display=st.none() | text
    ),
    st.builds(Performer, reference=st.none(), display=text),
)


@st.composite
def infusion_records(draw: st.DrawFn) -> InfusionRecord:
    """An IVIG infusion record with any combination of optional fields."""
    start = draw(aware_datetimes)
    return InfusionRecord(
        infusion_id=draw(source_ids),
        patient=draw(patients),
        product=draw(products),
        dose_g=draw(_floats(0.5, 200.0)),
        start=start,
        status=draw(st.sampled_from(InfusionStatus)),
        end=draw(st.none() | aware_datetimes),
        lot_number=draw(st.none() | text),
        dosing_weight_kg=draw(st.none() | _floats(1.0, 250.0)),
        volume_ml=draw(st.none() | _floats(1.0, 4000.0)),
        rate_steps=tuple(
            draw(st.lists(st.builds(RateStep, aware_datetimes, _floats(0.1, 500.0)), max_size=4))
        ),
        access=draw(st.none() | st.sampled_from(Access)),
        setting=draw(st.none() | st.sampled_from(Setting)),
        status_reason=draw(st.none() | text),
        premedications=tuple(draw(st.lists(medications_taken, max_size=3))),
        performer=draw(st.none() | performers),
        adverse_reactions=tuple(
            draw(
                st.lists(
                    st.builds(
                        AdverseReaction,
                        st.sampled_from(Symptom),
                        st.sampled_from(Severity),
                        aware_datetimes,
                    ),
                    max_size=3,
                )
            )
        ),
        note=draw(st.none() | text),
    )

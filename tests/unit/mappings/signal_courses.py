"""Synthetic MG courses for the signal tests (no real patient data): builders and named courses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mappings.records import (
    AdverseReaction,
    DiaryEntry,
    InfusionRecord,
    InfusionStatus,
    MgAdl,
    PatientRef,
    Product,
    Record,
    Severity,
    Symptom,
    SymptomRating,
    VitalSigns,
)

PATIENT = PatientRef(reference="Patient/synthetic-signals-001")
DAY0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
FILLERS = (
    "talking",
    "chewing",
    "brushing_teeth_or_combing_hair",
    "arising_from_chair",
    "double_vision",
    "eyelid_droop",
)


def adl(total: int, swallowing: int = 0, breathing: int = 0) -> MgAdl:
    """An MG-ADL with this total; swallowing and breathing as given, the rest spread 0-3."""
    items = {name: 0 for name in FILLERS}
    rest = total - swallowing - breathing
    for name in FILLERS:
        items[name] = min(3, rest)
        rest -= items[name]
    assert rest == 0, "total too high for the items"
    return MgAdl(swallowing=swallowing, breathing=breathing, **items)


def entry(
    day: float,
    total: int | None = 3,
    *,
    swallowing: int = 0,
    breathing: int = 0,
    symptoms: tuple[tuple[Symptom, Severity], ...] = (),
    temp: float | None = None,
    flare: bool | None = None,
    patient: PatientRef = PATIENT,
) -> DiaryEntry:
    """A diary entry `day` days after DAY0 (id D-<day>)."""
    return DiaryEntry(
        entry_id=f"D-{day:g}",
        patient=patient,
        recorded_at=DAY0 + timedelta(days=day),
        mg_adl=None if total is None else adl(total, swallowing, breathing),
        symptoms=tuple(SymptomRating(s, v) for s, v in symptoms),
        vitals=None if temp is None else VitalSigns(body_temperature_c=temp),
        flare_up=flare,
    )


def infusion(
    day: float,
    reactions: tuple[tuple[Symptom, Severity, float], ...] = (),
    patient: PatientRef = PATIENT,
) -> InfusionRecord:
    """A 4-hour IVIG infusion `day` days after DAY0 (id I-<day>); reactions at +hours."""
    start = DAY0 + timedelta(days=day)
    return InfusionRecord(
        infusion_id=f"I-{day:g}",
        patient=patient,
        product=Product(brand="SyntheticGlobulin"),
        dose_g=40.0,
        start=start,
        end=start + timedelta(hours=4),
        status=InfusionStatus.COMPLETED,
        adverse_reactions=tuple(
            AdverseReaction(s, v, start + timedelta(hours=h)) for s, v, h in reactions
        ),
    )


STABLE_TOTALS = (3, 2, 4, 3, 3, 2, 4)  # day-to-day noise of +-1 around 3


def stable(days: int = 112, cycle: int = 28, patient: PatientRef = PATIENT) -> list[Record]:
    """A stable patient: daily MG-ADL 2-4, IVIG every 4 weeks with a mild headache and a
    temperature below 38.0 the day after, mild symptoms now and then."""
    records: list[Record] = []
    for d in range(days):
        symptoms: tuple[tuple[Symptom, Severity], ...] = ()
        temp = None
        if d % cycle == 1:
            symptoms, temp = ((Symptom.HEADACHE, Severity.MILD),), 37.6
        elif d % 9 == 0:
            symptoms = (
                (Symptom.PTOSIS, Severity.MILD),
                (Symptom.SHORTNESS_OF_BREATH, Severity.MILD),
            )
        records.append(
            entry(
                d + 0.5,
                STABLE_TOTALS[d % len(STABLE_TOTALS)],
                symptoms=symptoms,
                temp=temp,
                flare=False if d % 7 == 0 else None,
                patient=patient,
            )
        )
    for d in range(0, days, cycle):
        reactions = ((Symptom.HEADACHE, Severity.MILD, 6.0),)
        records.append(infusion(d, reactions, patient=patient))
    return records


def wear_off(every_days: int = 3, cycles: int = 4, patient: PatientRef = PATIENT) -> list[Record]:
    """IVIG every 28 days; MG-ADL 2 for most of the cycle, 5 in the last 3 days before the next
    infusion, back to 2 after it. Entries every `every_days` days, and a few after the last
    infusion (which brings the patient back down)."""
    records: list[Record] = []
    for d in range(0, 28 * cycles + 6, every_days):
        in_cycle = d % 28
        records.append(entry(d + 0.5, 5 if in_cycle >= 25 else 2, patient=patient))
    for c in range(cycles + 1):
        records.append(infusion(28 * c, patient=patient))
    return records


def ivig_flu(patient: PatientRef = PATIENT) -> list[Record]:
    """Stable for 4 weeks, an infusion on day 28, fever 38.4 with moderate headache and chills the
    next day, 37.9 and a mild headache the day after, then well."""
    records = [r for r in stable(28, patient=patient)]
    records.append(infusion(28, ((Symptom.HEADACHE, Severity.MILD, 5.0),), patient=patient))
    flu = ((Symptom.HEADACHE, Severity.MODERATE), (Symptom.CHILLS, Severity.MODERATE))
    records.append(entry(29, 3, symptoms=flu, temp=38.4, patient=patient))
    records.append(
        entry(30, 3, symptoms=((Symptom.HEADACHE, Severity.MILD),), temp=37.9, patient=patient)
    )
    records.append(entry(31, 3, temp=36.9, patient=patient))
    return records


def bulbar_flare(patient: PatientRef = PATIENT) -> list[Record]:
    """Stable for 3 weeks, then swallowing and breathing items at 2-3 on two days running."""
    records = stable(21, patient=patient)
    records.append(entry(21.5, 8, swallowing=2, breathing=2, patient=patient))
    records.append(
        entry(
            22.5,
            10,
            swallowing=3,
            breathing=2,
            symptoms=((Symptom.SHORTNESS_OF_BREATH, Severity.MODERATE),),
            patient=patient,
        )
    )
    return records


def recovery(patient: PatientRef = PATIENT) -> list[Record]:
    """The bulbar flare, then back to the usual MG-ADL of 3 for four days."""
    records = bulbar_flare(patient)
    records.extend(entry(d + 0.5, 3, patient=patient) for d in range(23, 27))
    return records

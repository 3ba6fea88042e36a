"""Synthetic diary entries and infusions (seeded, no real data) and their FHIR resources."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import mappings
from mappings.context import MappingContext
from mappings.records import (
    MG_ADL_ITEMS,
    DiaryEntry,
    InfusionRecord,
    InfusionStatus,
    MedicationTaken,
    MgAdl,
    PatientRef,
    Product,
    Record,
    Severity,
    Symptom,
    SymptomRating,
    VitalSigns,
)

CTX = MappingContext(app_namespace="synthetic-export-app", source="urn:diarybridge:client:synth")
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def patient(index: int) -> PatientRef:
    """The reference of synthetic patient number `index`."""
    return PatientRef(reference=f"Patient/synthetic-export-{index:04d}")


def diary_entry(rng: random.Random, index: int, patients: int) -> DiaryEntry:
    """One diary entry with MG-ADL, scores, a symptom, vitals and sometimes a medication."""
    items = {item: rng.randint(0, 3) for item in MG_ADL_ITEMS}
    symptom = rng.choice(list(Symptom))
    return DiaryEntry(
        entry_id=f"synthetic-entry-{index:06d}",
        patient=patient(index % patients),
        recorded_at=START + timedelta(hours=index),
        mg_adl=MgAdl(**items),
        fatigue=rng.randint(0, 10),
        muscle_weakness=rng.randint(0, 10),
        symptoms=(SymptomRating(symptom, rng.choice(list(Severity))),),
        vitals=VitalSigns(heart_rate_bpm=rng.randint(55, 95), spo2_percent=rng.randint(93, 99)),
        flare_up=rng.random() < 0.1,
        medications=(
            (MedicationTaken(name="pyridostigmine", dose=60.0, dose_unit="mg"),)
            if rng.random() < 0.3
            else ()
        ),
        note="synthetic note" if rng.random() < 0.2 else None,
    )


def infusion(rng: random.Random, index: int, patients: int) -> InfusionRecord:
    """One completed IVIG infusion."""
    start = START + timedelta(days=index % 300, hours=1)
    return InfusionRecord(
        infusion_id=f"synthetic-ivig-{index:06d}",
        patient=patient(index % patients),
        product=Product(brand="Privigen"),
        dose_g=float(rng.choice((35, 70, 140))),
        dosing_weight_kg=float(rng.randint(55, 95)),
        start=start,
        end=start + timedelta(hours=4),
        status=InfusionStatus.COMPLETED,
        lot_number=f"SYN-LOT-{index:04d}",
    )


def records(count: int, *, patients: int = 5, seed: int = 7) -> Iterator[Record]:
    """`count` records, about one infusion per ten diary entries."""
    rng = random.Random(seed)
    for index in range(count):
        if index % 10 == 9:
            yield infusion(rng, index, patients)
        else:
            yield diary_entry(rng, index, patients)


def resources(count: int, *, ctx: MappingContext = CTX, **kwargs: Any) -> list[dict[str, Any]]:
    """The FHIR R4 resources of `records(count)`, sent by the app `ctx` names."""
    return mappings.to_resources(records(count, **kwargs), ctx)


def batch_put(fhir: Any, items: list[dict[str, Any]], chunk: int = 500) -> int:
    """PUT resources in batch Bundles of `chunk`; returns how many the server took."""
    stored = 0
    for start in range(0, len(items), chunk):
        entries = [
            {
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in items[start : start + chunk]
        ]
        results = fhir.batch({"resourceType": "Bundle", "type": "batch", "entry": entries})
        failed = [r for r in results if not r.ok]
        if failed:
            raise RuntimeError(f"{len(failed)} of {len(entries)} PUTs failed")
        stored += len(results)
    return stored

"""Synthetic diary entries and infusions in our JSON format, for import tests, the report and
bench/bench_import.py. A 21-day IVIG cycle: scores rise as the next infusion nears (wearing off),
and some infusions are followed by 'IVIG flu' headaches. No real person's data."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from mappings.records import MG_ADL_ITEMS

START = datetime(2026, 6, 1, 20, 0, tzinfo=UTC)
CYCLE_DAYS = 21


def _mg_adl(total: int) -> dict[str, int]:
    items = dict.fromkeys(MG_ADL_ITEMS, 0)
    for n in range(min(total, 24)):
        items[MG_ADL_ITEMS[n % 8]] += 1
    return items


def diary_entries(
    patient: str, count: int, seed: int = 1, prefix: str = ""
) -> Iterator[dict[str, Any]]:
    """`count` daily entries of one patient (Patient/<id>), one per evening."""
    rng = random.Random(seed)
    for day in range(count):
        into_cycle = day % CYCLE_DAYS  # day 0: the infusion day
        wear = max(0, into_cycle - 10)  # from day 10 on, symptoms creep back
        entry: dict[str, Any] = {
            "entry_id": f"{prefix}{patient.rsplit('/', 1)[-1]}-d{day:06d}",
            "patient": {"reference": patient},
            "recorded_at": (START + timedelta(days=day, minutes=rng.randint(-30, 30))).isoformat(),
            "mg_adl": _mg_adl(3 + wear + rng.randint(0, 1)),
            "fatigue": min(10, 2 + wear // 2 + rng.randint(0, 1)),
            "muscle_weakness": min(10, 1 + wear // 2 + rng.randint(0, 1)),
        }
        if wear > 6:
            entry["symptoms"] = [{"symptom": "ptosis", "severity": "moderate"}]
        if day % 7 == 3:
            entry["vitals"] = {"body_temperature_c": 36.6, "heart_rate_bpm": 70 + rng.randint(0, 9)}
        if day % 5 == 0:
            entry["medications"] = [{"name": "pyridostigmine", "dose": 60.0, "dose_unit": "mg"}]
        yield entry


def infusions(patient: str, days: int, prefix: str = "") -> Iterator[dict[str, Any]]:
    """One two-day IVIG course every 21 days over `days` days; every other one gives IVIG flu."""
    for n, day in enumerate(range(0, days, CYCLE_DAYS)):
        start = START + timedelta(days=day) - timedelta(hours=11)  # 09:00 on the infusion day
        end = start + timedelta(days=1, hours=4)
        record: dict[str, Any] = {
            "infusion_id": f"{prefix}{patient.rsplit('/', 1)[-1]}-ivig-{n:03d}",
            "patient": {"reference": patient},
            "product": {"brand": "Privigen"},
            "dose_g": 70.0,
            "dosing_weight_kg": 70.0,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "status": "completed",
        }
        if n % 2 == 1:
            record["adverse_reactions"] = [
                {
                    "symptom": "headache",
                    "severity": "moderate",
                    "onset": (start + timedelta(hours=20)).isoformat(),
                }
            ]
        yield record


def seed_patient(fhir_base_url: str, db_path: str, patient: str, days: int) -> Any:
    """Import `days` of diary entries and the infusions of that period for one patient, and push
    them to the FHIR server through the outbox (as `diarybridge import` does)."""
    import io
    import json

    from service import store
    from service.config import FhirServerSettings
    from service.imports import Importer
    from service.sync.runtime import SyncRuntime

    engine = store.make_engine(f"sqlite:///{db_path}")
    store.upgrade(engine)
    sessions = store.make_session_factory(engine)
    runtime = SyncRuntime(FhirServerSettings(base_url=fhir_base_url), sessions)
    importer = Importer(sessions, "synthetic-seed", worker=runtime.worker())
    records = [*diary_entries(patient, days), *infusions(patient, days)]
    importer.import_text(io.StringIO("".join(json.dumps(r) + "\n" for r in records)), "seed")
    summary = importer.finish()
    assert summary.not_delivered == 0 and summary.invalid == 0, summary
    return summary

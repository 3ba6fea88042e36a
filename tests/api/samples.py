"""Synthetic records in our JSON formats, as a diary app would send them."""

from __future__ import annotations

import copy
from typing import Any

from tests.conftest import PATIENT

DIARY_ENTRY: dict[str, Any] = {
    "entry_id": "2026-11-03-evening",
    "patient": {"reference": PATIENT},
    "recorded_at": "2026-11-03T20:15:00+01:00",
    "mg_adl": {
        "talking": 1,
        "chewing": 1,
        "swallowing": 0,
        "breathing": 0,
        "brushing_teeth_or_combing_hair": 2,
        "arising_from_chair": 1,
        "double_vision": 1,
        "eyelid_droop": 2,
    },
    "fatigue": 6,
    "muscle_weakness": 5,
    "symptoms": [{"symptom": "ptosis", "severity": "moderate"}],
    "vitals": {
        "body_temperature_c": 36.8,
        "heart_rate_bpm": 76,
        "systolic_mmhg": 124,
        "diastolic_mmhg": 78,
        "body_weight_kg": 71.5,
        "spo2_percent": 97,
    },
    "flare_up": False,
    "fluids_ml": 1800,
    "medications": [
        {
            "name": "pyridostigmine",
            "dose": 60.0,
            "dose_unit": "mg",
            "taken_at": "2026-11-03T08:00:00+01:00",
        }
    ],
    "note": "Arms heavy after lunch.",
}

INFUSION: dict[str, Any] = {
    "infusion_id": "ivig-2026-11-10",
    "patient": {"reference": PATIENT},
    "product": {"brand": "Privigen"},
    "lot_number": "SYN-LOT-0042",
    "dose_g": 70.0,
    "dosing_weight_kg": 70.0,
    "volume_ml": 700.0,
    "start": "2026-11-10T09:00:00+01:00",
    "end": "2026-11-11T13:30:00+01:00",
    "rate_steps": [
        {"at": "2026-11-10T09:00:00+01:00", "ml_per_hour": 30.0},
        {"at": "2026-11-10T09:30:00+01:00", "ml_per_hour": 60.0},
        {"at": "2026-11-10T10:00:00+01:00", "ml_per_hour": 120.0},
    ],
    "access": "peripheral",
    "setting": "infusion_centre",
    "status": "completed",
    "premedications": [
        {
            "name": "paracetamol",
            "dose": 1000.0,
            "dose_unit": "mg",
            "taken_at": "2026-11-10T08:30:00+01:00",
        }
    ],
    "performer": {"display": "Infusion nurse (synthetic)"},
    "adverse_reactions": [
        {"symptom": "headache", "severity": "moderate", "onset": "2026-11-11T18:00:00+01:00"}
    ],
    "note": "Tolerated well.",
}


def diary(**changes: Any) -> dict[str, Any]:
    """A copy of the sample diary entry with some fields changed (None removes a field)."""
    entry = copy.deepcopy(DIARY_ENTRY)
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not None}


def infusion(**changes: Any) -> dict[str, Any]:
    """A copy of the sample infusion with some fields changed (None removes a field)."""
    record = copy.deepcopy(INFUSION)
    record.update(changes)
    return {k: v for k, v in record.items() if v is not None}

"""The infusion record's cross-field rules: each problem named by field, in a stable order."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import ValidationError

from service.schemas import dump_record
from service.schemas.records import InfusionRecordSchema
from tests.unit.mappings.samples import INFUSION


def problems(**changes: Any) -> dict[str, Any]:
    payload = {**dump_record(INFUSION), **changes}
    with pytest.raises(ValidationError) as caught:
        InfusionRecordSchema().load(payload)
    return caught.value.messages  # type: ignore[return-value]


def test_the_sample_passes() -> None:
    assert InfusionRecordSchema().load(dump_record(INFUSION)) == INFUSION


def test_an_end_before_start_and_steps_outside_it_are_named() -> None:
    assert problems(end="2026-11-10T08:00:00+01:00") == {
        "end": ["must not be before start"],
        "rate_steps": ["every step must lie between start and end"],
    }


def test_a_stopped_infusion_needs_an_end_and_a_reason() -> None:
    assert problems(end=None, status_reason=None, rate_steps=[]) == {
        "end": ["is required when status is stopped"],
        "status_reason": ["is required when status is stopped"],
    }


def test_both_end_problems_are_listed_in_order() -> None:
    got = problems(start="2026-11-10T14:00:00+01:00", end="2026-11-10T13:00:00+01:00")
    assert got["end"] == ["must not be before start"]
    got = problems(status="completed", end=None)
    assert got == {"end": ["is required when status is completed"]}


def test_dose_per_kg_is_checked_never_trusted() -> None:
    assert problems(dose_g_per_kg=1.0) == {
        "dose_g_per_kg": [
            "must equal dose_g / dosing_weight_kg (it is computed; you may leave it out)"
        ]
    }
    assert problems(dose_g_per_kg=0.5, dosing_weight_kg=None) == {
        "dose_g_per_kg": [
            "must equal dose_g / dosing_weight_kg (it is computed; you may leave it out)"
        ]
    }


def test_steps_out_of_order_and_outside_the_window_list_both() -> None:
    steps = [
        {"at": "2026-11-10T09:30:00+01:00", "ml_per_hour": 30.0},
        {"at": "2026-11-10T08:00:00+01:00", "ml_per_hour": 60.0},
    ]
    assert problems(rate_steps=steps) == {
        "rate_steps": [
            "must be in strictly increasing time order",
            "every step must lie between start and end",
        ]
    }

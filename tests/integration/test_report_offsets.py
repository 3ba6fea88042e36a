"""The report from real FHIR servers keeps each entry on the patient's own day: the servers keep
the recorded offset, and the report draws flare days and breathing problems from it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.api.samples import diary
from tests.conftest import headers
from tests.integration.test_sync_push_pull import BATCH, make_app, outcomes

pytestmark = pytest.mark.integration


def test_an_evening_entry_at_minus_five_is_on_its_day_after_a_round_trip(
    tmp_path: Path, any_fhir_server: str
) -> None:
    patient = f"synthetic-offset-{datetime.now(UTC).strftime('%H%M%S%f')}"
    adl = {
        "talking": 0, "chewing": 0, "swallowing": 1, "breathing": 2,
        "brushing_teeth_or_combing_hair": 0, "arising_from_chair": 0,
        "double_vision": 1, "eyelid_droop": 1,
    }  # fmt: skip
    entry = diary(
        entry_id=f"{patient}-evening",
        patient={"reference": f"Patient/{patient}"},
        # 02:00 UTC on Nov 4: a UTC chart would put it on the next day
        recorded_at="2026-11-03T21:00:00-05:00",
        mg_adl=adl,
        flare_up=True,
    )
    client = make_app(tmp_path, any_fhir_server).test_client()
    assert outcomes(client.post("/sync/diary-entries", json=[entry], headers=BATCH)) == ["created"]

    page = client.get(f"/patients/{patient}/report", headers=headers("clinician"))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Flare-up days (patient-reported): 2026-11-03</p>" in html
    assert "<tr><td>2026-11-03T21:00-05:00</td><td>2</td><td>1</td>" in html
    assert "(latest entry:\n UTC-05:00)" in html

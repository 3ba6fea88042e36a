"""A system caller's record id reused for another patient, with the ledger lost, on real servers.

Both servers take `PUT Type/{id}` as a create, and a system caller's ids are the app's (no
patient in them): without a look-up, patient B's record with patient A's id from an empty
ledger would replace A's resources. It must fail with `foreign_subject` and leave A's alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.api.samples import diary
from tests.conftest import KEYS
from tests.integration.test_sync_push_pull import make_app

pytestmark = pytest.mark.integration

BATCH = {"X-API-Key": KEYS["batch"]["key"]}


def on_server(fhir_server: str, patient: str) -> dict[str, dict[str, Any]]:
    """Every Observation and MedicationAdministration of the patient: Type/id -> resource."""
    found: dict[str, dict[str, Any]] = {}
    for rtype in ("Observation", "MedicationAdministration"):
        bundle = requests.get(
            f"{fhir_server}/{rtype}",
            params={"subject": f"Patient/{patient}", "_count": "100"},
            timeout=30,
        ).json()
        for entry in bundle.get("entry") or []:
            found[f"{rtype}/{entry['resource']['id']}"] = entry["resource"]
    return found


# auto: both servers take update as create (PUT Type/{uuid5}); conditional update
# (PUT Type?identifier=) is looked up the same way; a conditional create's 200 is read and checked.
@pytest.mark.parametrize("strategy", ["auto", "conditional-update", "conditional-create"])
@pytest.mark.parametrize("any_fhir_server", ["medplum", "sekmet"], indirect=True)
def test_a_reused_id_for_another_patient_from_an_empty_ledger_changes_nothing(
    tmp_path: Path, any_fhir_server: str, strategy: str
) -> None:
    env = {"DIARYBRIDGE_FHIR_PUSH_STRATEGY": strategy}
    stamp = datetime.now(UTC).strftime("%H%M%S%f")
    a, b = f"synthetic-shared-a-{stamp}", f"synthetic-shared-b-{stamp}"
    record_id = f"2026-11-02-evening-{stamp}"  # a date-based id, as the README's examples

    def entry(patient: str, fatigue: int) -> dict[str, Any]:
        return diary(
            entry_id=record_id, patient={"reference": f"Patient/{patient}"}, fatigue=fatigue
        )

    first = make_app(tmp_path / "first", any_fhir_server, **env).test_client()
    sent = first.post("/sync/diary-entries", json=[entry(a, 3)], headers=BATCH)
    assert sent.status_code == HTTPStatus.OK, sent.json
    assert [r["outcome"] for r in sent.json["results"]] == ["created"]
    before = on_server(any_fhir_server, a)
    assert before  # A's record is on the server

    # A new, empty ledger (lost database, or a second instance): B's record with A's id.
    second = make_app(tmp_path / "second", any_fhir_server, **env).test_client()
    reused = second.post("/sync/diary-entries", json=[entry(b, 9)], headers=BATCH)
    assert reused.status_code == HTTPStatus.OK, reused.json
    (result,) = reused.json["results"]
    assert result["outcome"] == "failed"
    assert result["error"]["code"] == "foreign_subject"
    assert a not in str(reused.json)  # nothing of A's answered to B's caller

    after = on_server(any_fhir_server, a)
    assert after == before  # same ids, versions and contents: untouched
    assert on_server(any_fhir_server, b) == {}

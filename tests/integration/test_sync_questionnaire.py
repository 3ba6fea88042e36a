"""The MG-ADL as a QuestionnaireResponse pushed to real FHIR servers: the Observation's
derivedFrom points at the server's copy, a second push duplicates nothing, the pull is lossless."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from tests.api.samples import diary
from tests.integration.test_sync_push_pull import BATCH, SYSTEM, make_app, outcomes, unique_patient

pytestmark = pytest.mark.integration


def _search(base: str, resource_type: str, patient: str, value: str) -> list[dict[str, Any]]:
    """The patient's resources of a type that carry our identifier value. By subject, then
    filtered here: Medplum's in-memory store fails a `identifier=system|value` search on a
    QuestionnaireResponse (its R4 identifier is one object, not a list)."""
    bundle = requests.get(
        f"{base}/{resource_type}", params={"subject": f"Patient/{patient}"}, timeout=30
    ).json()
    found = []
    for entry in bundle.get("entry", []):
        idents = entry["resource"].get("identifier", [])
        for ident in [idents] if isinstance(idents, dict) else idents:
            if (ident.get("system"), ident.get("value")) == (SYSTEM, value):
                found.append(entry["resource"])
    return found


def _keeps_responses(base: str) -> bool:
    statement = requests.get(f"{base}/metadata", timeout=30).json()
    types = {r["type"] for rest in statement["rest"] for r in rest.get("resource", [])}
    return "QuestionnaireResponse" in types


def test_the_response_is_pushed_and_the_observation_derives_from_it(
    tmp_path: Path, any_fhir_server: str
) -> None:
    """Medplum keeps QuestionnaireResponses; SEKMET lists no such type and gets the Observation
    alone, which still carries the whole MG-ADL."""
    patient = unique_patient("sdc")
    entry = diary(entry_id=f"{patient}-evening", patient={"reference": f"Patient/{patient}"})
    app = make_app(tmp_path, any_fhir_server, DIARYBRIDGE_MG_ADL_QUESTIONNAIRE_RESPONSE="true")
    client = app.test_client()
    assert outcomes(client.post("/sync/diary-entries", json=[entry], headers=BATCH)) == ["created"]

    value = f"diary-entry/{entry['entry_id']}/mg-adl-response"
    (obs,) = _search(
        any_fhir_server, "Observation", patient, f"diary-entry/{entry['entry_id']}/mg-adl"
    )
    keeps = _keeps_responses(any_fhir_server)
    if keeps:
        (qr,) = _search(any_fhir_server, "QuestionnaireResponse", patient, value)
        assert qr["questionnaire"] == "https://diarybridge.dev/fhir/Questionnaire/mg-adl|1"
        assert qr["subject"] == {"reference": f"Patient/{patient}"}
        answers = {i["linkId"]: i["answer"][0]["valueInteger"] for i in qr["item"]}
        assert answers["total"] == sum(entry["mg_adl"].values())
        # the reference names the server's copy, whatever id the server gave it
        assert obs["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{qr['id']}"}]
    else:
        assert "derivedFrom" not in obs

    again = client.post("/sync/diary-entries", json=[entry], headers=BATCH)
    assert outcomes(again) == ["unchanged"]
    if keeps:
        assert len(_search(any_fhir_server, "QuestionnaireResponse", patient, value)) == 1

    pulled = client.get(f"/patients/{patient}/diary-entries", headers=BATCH)
    assert pulled.status_code == 200, pulled.json
    assert pulled.json["unreadable"] == 0
    (back,) = pulled.json["diary_entries"]
    assert {item: back["mg_adl"][item] for item in entry["mg_adl"]} == entry["mg_adl"]

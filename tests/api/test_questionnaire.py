"""The MG-ADL Questionnaire is served without credentials, and the setting adds responses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from mappings.questionnaire import mg_adl_questionnaire
from service.app import create_app
from service.config import Settings
from tests.api.contract import ContractClient
from tests.api.samples import DIARY_ENTRY
from tests.conftest import headers, make_env
from tests.unit.mappings.test_mappings_questionnaire import LOCAL


def test_the_questionnaire_is_served_without_credentials(client: FlaskClient) -> None:
    response = client.get("/Questionnaire/mg-adl")
    assert response.status_code == 200
    assert response.mimetype == "application/fhir+json"
    body = response.get_json(force=True)
    assert body == mg_adl_questionnaire()
    assert body["url"] == "https://diarybridge.dev/fhir/Questionnaire/mg-adl"
    assert body["item"][3]["code"][0] == {
        "system": LOCAL, "code": "mg-adl-breathing", "display": "MG-ADL breathing (0-3)",
    }  # fmt: skip
    assert client.get("/Questionnaire/phq-9").status_code == 404


def _types(client: FlaskClient) -> list[Any]:
    response = client.post(
        "/convert/diary-entries",
        data=json.dumps(DIARY_ENTRY),
        content_type="application/json",
        headers=headers("diary_app"),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return [e["resource"] for e in response.get_json(force=True)["entry"]]


def test_the_setting_adds_a_response_the_observation_derives_from(tmp_path: Path) -> None:
    plain = create_app(Settings.from_env(make_env(tmp_path / "a")))
    plain.test_client_class = ContractClient
    resources = _types(plain.test_client())
    assert "QuestionnaireResponse" not in {r["resourceType"] for r in resources}

    env = make_env(tmp_path / "b", DIARYBRIDGE_MG_ADL_QUESTIONNAIRE_RESPONSE="true")
    app = create_app(Settings.from_env(env))
    app.test_client_class = ContractClient
    resources = _types(app.test_client())
    (qr,) = [r for r in resources if r["resourceType"] == "QuestionnaireResponse"]
    assert qr["questionnaire"] == "https://diarybridge.dev/fhir/Questionnaire/mg-adl|1"
    derived = [r["derivedFrom"] for r in resources if "derivedFrom" in r]
    assert derived == [[{"reference": f"QuestionnaireResponse/{qr['id']}"}]]

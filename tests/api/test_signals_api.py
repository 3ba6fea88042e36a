"""GET /patients/{id}/signals: each patient's signals from the ledger, isolated per patient."""

from __future__ import annotations

import json
from http import HTTPStatus
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mappings.records import PatientRef
from service import wiring
from service.app import create_app
from service.config import Settings
from service.sync.accept import accept_records
from tests.api.contract import ContractClient
from tests.conftest import KEYS, OTHER_PATIENT, PATIENT, headers, make_env
from tests.unit.mappings.signal_courses import bulbar_flare, stable

# A second patient of the same diary app: one client id, two patient-bound keys.
OTHER_KEY = {**KEYS["diary_app"], "key": "diary-app-other-key-0123456789", "patient": OTHER_PATIENT}
NAMESPACE = KEYS["diary_app"]["client_id"]


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    env = make_env(tmp_path)
    env["DIARYBRIDGE_API_KEYS"] = json.dumps([*KEYS.values(), OTHER_KEY])
    env["DIARYBRIDGE_SYNC_ASYNC"] = "true"
    app = create_app(Settings.from_env(env))
    sessions = wiring.of(app).sessions
    # Patient 1 has a bulbar flare; patient 2 of the same app is stable.
    # Sent by the patients' own (patient-bound) credentials: each numbers its records itself,
    # so both patients have entries D-0.5, D-1.5, ... under the same app.
    flare = bulbar_flare(PatientRef(reference=PATIENT))
    accept_records(sessions, NAMESPACE, flare, per_patient=True)
    other = stable(28, patient=PatientRef(reference=OTHER_PATIENT))
    accept_records(sessions, NAMESPACE, other, per_patient=True)
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    app.test_client_class = ContractClient
    return app.test_client()


def _get(client: FlaskClient, patient: str, who: dict[str, str]) -> tuple[int, dict]:
    answer = client.get(f"/patients/{patient.removeprefix('Patient/')}/signals", headers=who)
    return answer.status_code, answer.get_json()


def test_the_patients_app_sees_the_danger_sign_and_worsening_with_evidence(
    client: FlaskClient,
) -> None:
    status, body = _get(client, PATIENT, headers("diary_app"))
    assert status == HTTPStatus.OK
    assert body["patient"] == PATIENT
    assert "not diagnoses" in body["notice"]
    assert [(s["rule"], s["status"]) for s in body["signals"]] == [
        ("danger_sign", "active"),
        ("worsening", "active"),
    ]
    danger = body["signals"][0]
    assert danger["severity"] == "high" and "not a diagnosis" in danger["text"]
    assert {(e["id"], e["part"]) for e in danger["evidence"]} >= {("D-21.5", "mg-adl")}
    assert danger["namespace"] == NAMESPACE


def test_the_stable_patient_of_the_same_app_has_none(client: FlaskClient) -> None:
    who = {"X-API-Key": OTHER_KEY["key"]}
    status, body = _get(client, OTHER_PATIENT, who)
    assert status == HTTPStatus.OK and body["signals"] == []


def test_a_patient_bound_key_cannot_see_the_other_patient_of_its_app(client: FlaskClient) -> None:
    who = {"X-API-Key": OTHER_KEY["key"]}
    status, body = _get(client, PATIENT, who)
    unknown_status, unknown_body = _get(client, "Patient/nobody-here", who)
    # Exactly like an unknown patient: nothing tells it the patient exists or has signals.
    assert status == unknown_status == HTTPStatus.NOT_FOUND
    assert body == unknown_body
    assert "danger" not in json.dumps(body)


def test_a_clinician_sees_any_patient(client: FlaskClient) -> None:
    status, body = _get(client, PATIENT, headers("clinician"))
    assert status == HTTPStatus.OK and len(body["signals"]) == 2


def test_resolved_signals_age_out_of_the_list(app: Flask, client: FlaskClient) -> None:
    from tests.unit.mappings.signal_courses import entry

    recovered = [entry(d + 0.5, 3, patient=PatientRef(reference=PATIENT)) for d in range(23, 26)]
    accept_records(wiring.of(app).sessions, NAMESPACE, recovered, per_patient=True)
    _, body = _get(client, PATIENT, headers("diary_app"))
    assert [s["status"] for s in body["signals"]] == []  # resolved in 2026-01, long ago
    answer = client.get(
        "/patients/synthetic-mg-001/signals?recent_days=3650", headers=headers("diary_app")
    )
    assert [s["status"] for s in answer.get_json()["signals"]] == ["resolved", "resolved"]


def test_an_unknown_query_parameter_is_refused(client: FlaskClient) -> None:
    answer = client.get("/patients/synthetic-mg-001/signals?since=x", headers=headers("diary_app"))
    assert answer.status_code == HTTPStatus.UNPROCESSABLE_ENTITY


def test_a_clinic_rules_file_changes_what_is_raised(tmp_path: Path) -> None:
    rules_file = tmp_path / "clinic-signals.yaml"
    rules_file.write_text("danger_sign:\n  enabled: false\n", encoding="utf-8")
    env = make_env(tmp_path, DIARYBRIDGE_SIGNAL_RULES_FILE=str(rules_file))
    app = create_app(Settings.from_env(env))
    accept_records(
        wiring.of(app).sessions,
        NAMESPACE,
        bulbar_flare(PatientRef(reference=PATIENT)),
    )
    app.test_client_class = ContractClient
    status, body = _get(app.test_client(), PATIENT, headers("diary_app"))
    assert status == HTTPStatus.OK
    assert [s["rule"] for s in body["signals"]] == ["worsening"]


def test_a_misspelt_clinic_rules_file_stops_the_start(tmp_path: Path) -> None:
    rules_file = tmp_path / "clinic-signals.yaml"
    rules_file.write_text("worsening:\n  threshold: {points: 3}\n", encoding="utf-8")
    env = make_env(tmp_path, DIARYBRIDGE_SIGNAL_RULES_FILE=str(rules_file))
    with pytest.raises(ValueError, match="points"):
        create_app(Settings.from_env(env))


def test_posted_entries_open_a_signal_and_a_later_one_resolves_it(client: FlaskClient) -> None:
    from service.schemas import dump_record
    from tests.unit.mappings.signal_courses import entry

    who = {"X-API-Key": OTHER_KEY["key"]}  # the stable patient, through POST /sync
    patient = PatientRef(reference=OTHER_PATIENT)
    danger = dump_record(entry(28.5, 6, breathing=2, swallowing=2, patient=patient))
    assert client.post("/sync/diary-entries", json=danger, headers=who).status_code == 202
    _, body = _get(client, OTHER_PATIENT, who)
    assert [(s["rule"], s["status"]) for s in body["signals"]] == [("danger_sign", "active")]
    calm = dump_record(entry(29.5, 3, patient=patient))
    assert client.post("/sync/diary-entries", json=calm, headers=who).status_code == 202
    # Resolved in January 2026 (the synthetic course's dates): ask for the long list.
    answer = client.get("/patients/synthetic-mg-002/signals?recent_days=3650", headers=who)
    (sign,) = answer.get_json()["signals"]
    assert (sign["id"], sign["status"]) == ("danger_sign:diary-entry:D-28.5", "resolved")
    assert sign["resolved_by"] == "diary-entry/D-29.5"
    # Patient one's signals are untouched by patient two's entries.
    _, first = _get(client, PATIENT, headers("diary_app"))
    assert [(s["rule"], s["status"]) for s in first["signals"]] == [
        ("danger_sign", "active"),
        ("worsening", "active"),
    ]

"""A FHIR server's diagnostics never reach patient-bound answers or our database.

The faked server quotes what it refused (as real servers do) with a planted marker in its
diagnostics; answers carry the issue's code, severity and expression, and only system/*
callers see the diagnostics, cleaned of control characters and cut short.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import responses
from flask.testing import FlaskClient

from service.app import create_app
from service.config import Settings
from tests.api.contract import ContractClient
from tests.api.samples import diary
from tests.conftest import PATIENT, headers, make_env

BASE = "https://fhir.clinic.test/fhir"
MARKER = "zq7Diag41"
# What a server that quotes the refused body says: values, a forged log line, and length.
DIAGNOSTICS = f"{MARKER} note='Arms heavy' rejected\n\x1b[31mFAKE LOG LINE\r\x00" + "x" * 500


def capability() -> dict[str, Any]:
    resource = {
        "interaction": [{"code": c} for c in ("read", "create", "update", "search-type")],
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalUpdate": True,
    }
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "date": "2026-01-01",
        "rest": [
            {
                "mode": "server",
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
                "resource": [
                    {"type": t, **resource} for t in ("Observation", "MedicationAdministration")
                ],
            }
        ],
    }


def refusal(expression: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "invalid",
                "diagnostics": DIAGNOSTICS,
                "expression": [expression],
            }
        ],
    }


@pytest.fixture
def server() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{BASE}/metadata", json=capability())
        mock.get(f"{BASE}/Observation", status=400, json=refusal("Observation.date"))
        mock.post(BASE, status=400, json=refusal("Bundle.entry[0].resource.note"))
        yield mock


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "diarybridge.sqlite3"


@pytest.fixture
def client(tmp_path: Path, server: responses.RequestsMock) -> FlaskClient:
    env = make_env(tmp_path, DIARYBRIDGE_FHIR_BASE_URL=BASE, DIARYBRIDGE_WORKER_IN_PROCESS="false")
    app = create_app(Settings.from_env(env))
    app.test_client_class = ContractClient
    return app.test_client()


def assert_clean(diagnostics: str) -> None:
    assert len(diagnostics) <= 200
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in diagnostics)


def test_a_refused_search_answers_code_severity_expression_not_diagnostics(
    client: FlaskClient,
) -> None:
    patient = PATIENT.removeprefix("Patient/")
    refused = client.get(
        f"/patients/{patient}/observations?date=ge2026", headers=headers("diary_app")
    )
    assert refused.status_code == HTTPStatus.BAD_REQUEST
    assert MARKER not in refused.get_data(as_text=True)
    [issue] = refused.json["issue"]
    assert issue["expression"] == ["Observation.date"]
    assert issue["diagnostics"] == "error: invalid"
    operator = client.get(f"/patients/{patient}/observations?date=ge2026", headers=headers("batch"))
    [issue] = operator.json["issue"]
    said = issue["diagnostics"].removeprefix("error: invalid (").removesuffix(")")
    assert said.startswith(MARKER) and "FAKE LOG LINE" in said
    assert_clean(said)


def test_a_refused_push_answers_without_diagnostics_and_stores_none(
    client: FlaskClient, db_path: Path
) -> None:
    pushed = client.post(
        "/sync/diary-entries", json=diary(entry_id="d-1"), headers=headers("diary_app")
    )
    assert pushed.status_code == HTTPStatus.OK, pushed.json
    [result] = pushed.json["results"]
    assert result["outcome"] == "failed"
    assert result["error"] == {
        "status": 400,
        "code": "invalid",
        "severity": "error",
        "expression": ["Bundle.entry[0].resource.note"],
    }
    assert MARKER not in pushed.get_data(as_text=True)
    ledger = client.get("/sync/entries/diary-entry/d-1", headers=headers("diary_app"))
    assert ledger.status_code == HTTPStatus.OK
    assert ledger.json["last_error"]["code"] == "invalid"
    assert MARKER not in ledger.get_data(as_text=True)
    with sqlite3.connect(db_path) as db:
        dump = "\n".join(db.iterdump())
    assert "Arms heavy" in dump or "d-1" in dump  # the dump does hold the ledger
    assert MARKER not in dump


def test_operators_see_cleaned_diagnostics_of_their_own_push_only(
    client: FlaskClient, db_path: Path
) -> None:
    pushed = client.post(
        "/sync/diary-entries", json=diary(entry_id="d-2"), headers=headers("batch")
    )
    [result] = pushed.json["results"]
    diagnostics = result["error"]["diagnostics"]
    assert diagnostics.startswith(MARKER)
    assert_clean(diagnostics)
    later = client.get(
        "/sync/entries/diary-entry/d-2?namespace=registry-export", headers=headers("batch")
    )
    assert later.json["last_error"]["diagnostics"] is None  # never stored, so gone
    with sqlite3.connect(db_path) as db:
        assert MARKER not in json.dumps(
            db.execute("SELECT last_error FROM ledger_entry").fetchall()
        )


def test_a_server_cannot_smuggle_values_through_code_severity_or_expression(
    client: FlaskClient, server: responses.RequestsMock
) -> None:
    hostile = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": f"error {MARKER}",
                "code": f"invalid-{MARKER.lower()}",
                "diagnostics": DIAGNOSTICS,
                "expression": [f"Observation.note\n{MARKER}" + "x" * 300, *["Observation.a"] * 9],
            }
        ],
    }
    server.replace(responses.GET, f"{BASE}/Observation", status=400, json=hostile)
    patient = PATIENT.removeprefix("Patient/")
    refused = client.get(f"/patients/{patient}/observations?code=x", headers=headers("diary_app"))
    [issue] = refused.json["issue"]
    assert issue["diagnostics"] == "error: unknown"  # only the value sets' own words
    [where] = issue["expression"]
    expressions = where.split(", ")
    assert len(expressions) == 5 and all(len(e) <= 200 for e in expressions)
    assert "\n" not in where

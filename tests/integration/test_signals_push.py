"""Signals on the real FHIR server: Flags appear, stay single on resend, go inactive on recovery."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import requests
from fhirclient import client as fhirclient
from fhirclient.models.flag import Flag
from flask.testing import FlaskClient

from mappings.records import DiaryEntry, InfusionRecord, PatientRef, Record
from service import wiring
from service.app import create_app
from service.config import Settings
from service.schemas import dump_record
from tests.api.contract import ContractClient
from tests.conftest import KEYS, make_env
from tests.unit.mappings.signal_courses import bulbar_flare, entry

pytestmark = pytest.mark.integration

BATCH = {"X-API-Key": KEYS["batch"]["key"]}
SIGNAL_SYSTEM = "https://diarybridge.dev/fhir/CodeSystem/care-team-signal"


def _client(tmp_path: Path, fhir_server: str) -> FlaskClient:
    app = create_app(Settings.from_env(make_env(tmp_path, DIARYBRIDGE_FHIR_BASE_URL=fhir_server)))
    app.test_client_class = ContractClient
    return app.test_client()


def _own(records: list[Record], patient: PatientRef, tag: str) -> list[Record]:
    # Unique ids and patient per run: the session's server is shared with other tests.
    out: list[Record] = []
    for r in records:
        if isinstance(r, DiaryEntry):
            out.append(replace(r, patient=patient, entry_id=f"{tag}-{r.entry_id}"))
        else:
            assert isinstance(r, InfusionRecord)
            out.append(replace(r, patient=patient, infusion_id=f"{tag}-{r.infusion_id}"))
    return out


def _sync(client: FlaskClient, records: list[Record]) -> None:
    for path, kind in (("/sync/diary-entries", DiaryEntry), ("/sync/infusions", InfusionRecord)):
        batch = [dump_record(r) for r in records if isinstance(r, kind)]
        if batch:
            answer = client.post(path, json=batch, headers=BATCH)
            assert answer.status_code == HTTPStatus.OK, answer.get_json()


def _search(fhir_server: str, rtype: str, params: dict[str, str]) -> list[dict[str, Any]]:
    answer = requests.get(f"{fhir_server}/{rtype}", params={**params, "_count": "100"}, timeout=30)
    answer.raise_for_status()
    return [e["resource"] for e in answer.json().get("entry", [])]


def _flags(fhir_server: str, patient: str) -> dict[str, list[dict[str, Any]]]:
    by_code: dict[str, list[dict[str, Any]]] = {}
    for flag in _search(fhir_server, "Flag", {"subject": patient}):
        (coding,) = [c for c in flag["code"]["coding"] if c["system"] == SIGNAL_SYSTEM]
        by_code.setdefault(coding["code"], []).append(flag)
    return by_code


@pytest.mark.parametrize(
    "any_fhir_server",
    [
        "medplum",
        pytest.param(
            "sekmet",
            marks=pytest.mark.xfail(
                strict=True,
                reason="SEKMET's CapabilityStatement offers no write for Flag/DetectedIssue: "
                "the signals are not pushed (logged), the records still are",
            ),
        ),
    ],
    indirect=True,
)
def test_flags_appear_stay_single_on_resend_and_go_inactive(
    tmp_path: Path, any_fhir_server: str
) -> None:
    fhir_server = any_fhir_server
    tag = f"sig{datetime.now(UTC).strftime('%H%M%S%f')}"
    patient = PatientRef(reference=f"Patient/synthetic-{tag}")
    client = _client(tmp_path, fhir_server)
    flare = _own(bulbar_flare(), patient, tag)
    _sync(client, flare)

    flags = _flags(fhir_server, patient.reference or "")
    assert {code: [f["status"] for f in found] for code, found in flags.items()} == {
        "danger-sign": ["active"],
        "worsening": ["active"],
    }
    issues = _search(fhir_server, "DetectedIssue", {"patient": patient.reference or ""})
    assert sorted(i["status"] for i in issues) == ["preliminary", "preliminary"]
    danger = next(i for i in issues if i["code"]["coding"][0]["code"] == "danger-sign")
    details = danger["evidence"][0]["detail"]
    # Literal references to the Observations the same sync wrote, and they resolve.
    literal = [d["reference"] for d in details if "reference" in d]
    assert len(literal) == len(details) == 3
    for ref in literal:
        got = requests.get(f"{fhir_server}/{ref}", timeout=30)
        assert got.status_code == HTTPStatus.OK and got.json()["resourceType"] == "Observation"

    # A standard client (SMART on FHIR's fhirclient, R4 models) reads them as well.
    smart = fhirclient.FHIRClient(settings={"app_id": "diarybridge-tests", "api_base": fhir_server})
    search = Flag.where(struct={"subject": patient.reference})
    read = list(search.perform_resources_iter(smart.server))
    assert sorted((f.status, f.code.coding[0].code) for f in read) == [
        ("active", "danger-sign"),
        ("active", "worsening"),
    ]
    assert all(f.category[0].coding[0].code == "clinical" for f in read)

    # Resend, one entry changed (so it is delivered again and the signals are written again).
    changed = [*flare[:-1], replace(flare[-1], note="synthetic: resent")]
    _sync(client, changed)
    again = _flags(fhir_server, patient.reference or "")
    assert {code: len(found) for code, found in again.items()} == {"danger-sign": 1, "worsening": 1}
    assert again["danger-sign"][0]["id"] == flags["danger-sign"][0]["id"]

    # Recovery: back to the usual MG-ADL; the same Flags become inactive, nothing new appears.
    recovered = _own([entry(d + 0.5, 3) for d in range(23, 26)], patient, tag)
    _sync(client, recovered)
    final = _flags(fhir_server, patient.reference or "")
    assert {code: [f["status"] for f in found] for code, found in final.items()} == {
        "danger-sign": ["inactive"],
        "worsening": ["inactive"],
    }
    assert all("end" in f["period"] for found in final.values() for f in found)
    issues = _search(fhir_server, "DetectedIssue", {"patient": patient.reference or ""})
    assert sorted(i["status"] for i in issues) == ["final", "final"]


def _statuses(fhir_server: str, patient: str) -> dict[str, list[str]]:
    return {
        code: [f["status"] for f in found] for code, found in _flags(fhir_server, patient).items()
    }


def test_withdrawn_evidence_makes_the_flags_entered_in_error(
    tmp_path: Path, fhir_server: str
) -> None:
    tag = f"sigw{datetime.now(UTC).strftime('%H%M%S%f')}"
    patient = PatientRef(reference=f"Patient/synthetic-{tag}")
    client = _client(tmp_path, fhir_server)
    flare = _own(bulbar_flare(), patient, tag)
    _sync(client, flare)
    assert _statuses(fhir_server, patient.reference or "") == {
        "danger-sign": ["active"],
        "worsening": ["active"],
    }
    # The app deletes the two flare entries: no signal is left, so no active Flag may stay.
    for record in flare[-2:]:
        assert isinstance(record, DiaryEntry)
        answer = client.delete(f"/sync/diary-entries/{record.entry_id}", headers=BATCH)
        assert answer.status_code == HTTPStatus.ACCEPTED
    wiring.of(client.application).sync.worker().drain()
    assert _statuses(fhir_server, patient.reference or "") == {
        "danger-sign": ["entered-in-error"],
        "worsening": ["entered-in-error"],
    }
    issues = _search(fhir_server, "DetectedIssue", {"patient": patient.reference or ""})
    assert [i["status"] for i in issues] == ["entered-in-error", "entered-in-error"]


def test_a_resolution_missed_by_a_failed_push_is_repaired_by_the_next_delivery(
    tmp_path: Path, fhir_server: str
) -> None:
    tag = f"sigr{datetime.now(UTC).strftime('%H%M%S%f')}"
    patient = PatientRef(reference=f"Patient/synthetic-{tag}")
    client = _client(tmp_path, fhir_server)
    _sync(client, _own(bulbar_flare(), patient, tag))
    runtime = wiring.of(client.application).sync
    rules, runtime.signal_rules = runtime.signal_rules, None  # as if the signal push failed
    _sync(client, _own([entry(23.5, 3)], patient, tag))
    assert set(_statuses(fhir_server, patient.reference or "")["danger-sign"]) == {"active"}
    runtime.signal_rules = rules
    # A later entry touches neither signal, but the server still shows them active.
    _sync(client, _own([entry(24.5, 3)], patient, tag))
    assert _statuses(fhir_server, patient.reference or "") == {
        "danger-sign": ["inactive"],
        "worsening": ["inactive"],
    }


def test_a_configured_care_team_gets_one_communication_per_signal(
    tmp_path: Path, fhir_server: str
) -> None:
    tag = f"sigc{datetime.now(UTC).strftime('%H%M%S%f')}"
    patient = PatientRef(reference=f"Patient/synthetic-{tag}")
    env = make_env(
        tmp_path,
        DIARYBRIDGE_FHIR_BASE_URL=fhir_server,
        DIARYBRIDGE_SIGNAL_CARE_TEAM="CareTeam/synthetic-mg-clinic",
    )
    app = create_app(Settings.from_env(env))
    app.test_client_class = ContractClient
    client = app.test_client()
    flare = _own(bulbar_flare(), patient, tag)
    _sync(client, flare)
    sent = _search(fhir_server, "Communication", {"subject": patient.reference or ""})
    assert len(sent) == 2  # danger sign and worsening
    assert all(c["recipient"] == [{"reference": "CareTeam/synthetic-mg-clinic"}] for c in sent)
    assert all("not a diagnosis" in c["payload"][0]["contentString"] for c in sent)
    # Resent: the same two, nothing new.
    _sync(client, [*flare[:-1], replace(flare[-1], note="synthetic: resent")])
    again = _search(fhir_server, "Communication", {"subject": patient.reference or ""})
    assert sorted(c["id"] for c in again) == sorted(c["id"] for c in sent)

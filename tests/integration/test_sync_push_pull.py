"""Push and pull through the API against the real FHIR server: idempotent, lossless, conflicts."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from mappings.identifiers import identifier_system
from service import wiring
from service.app import create_app
from service.config import Settings
from tests.api.contract import ContractClient
from tests.api.samples import DIARY_ENTRY, INFUSION, diary, infusion
from tests.conftest import KEYS, headers, make_env
from tests.fhir_server import CountByIdentifier, count_by_identifier

pytestmark = pytest.mark.integration

BATCH = {"X-API-Key": KEYS["batch"]["key"]}
SYSTEM = identifier_system(KEYS["batch"]["client_id"])


def make_app(tmp_path: Path, fhir_server: str, **extra: str) -> Flask:
    env = make_env(tmp_path, DIARYBRIDGE_FHIR_BASE_URL=fhir_server, **extra)
    app = create_app(Settings.from_env(env))
    app.test_client_class = ContractClient
    return app


AppFactory = Callable[..., FlaskClient]


@pytest.fixture
def server(request: pytest.FixtureRequest) -> str:
    """The FHIR base URL the app talks to: each server in turn for a test that asks for
    `any_fhir_server` (see tests/conftest.py), else the session's Medplum server."""
    name = "any_fhir_server" if "any_fhir_server" in request.fixturenames else "fhir_server"
    return str(request.getfixturevalue(name))


@pytest.fixture
def new_client(tmp_path: Path, server: str) -> AppFactory:
    """A client of a new app with its own empty ledger (as after losing the database)."""
    made = 0

    def make(**extra: str) -> FlaskClient:
        nonlocal made
        made += 1
        return make_app(tmp_path / f"app{made}", server, **extra).test_client()

    return make


def unique_patient(tag: str) -> str:
    return f"synthetic-{tag}-{datetime.now(UTC).strftime('%H%M%S%f')}"


def month_of_entries(patient: str, days: int = 30) -> list[dict[str, Any]]:
    start = datetime(2026, 10, 1, 20, 0, tzinfo=UTC)
    entries = []
    for day in range(days):
        at = (start + timedelta(days=day)).astimezone().isoformat()
        entries.append(
            diary(
                entry_id=f"{patient}-day-{day:02d}",
                patient={"reference": f"Patient/{patient}"},
                recorded_at=at,
                fatigue=day % 11,
                medications=[
                    {"name": "pyridostigmine", "dose": 60.0, "dose_unit": "mg", "taken_at": at}
                ],
            )
        )
    return entries


def outcomes(response: Any) -> list[str]:
    assert response.status_code == HTTPStatus.OK, response.json
    return [r["outcome"] for r in response.json["results"]]


def count_ours(fhir_server: str, resource_type: str, patient: str) -> int:
    bundle = requests.get(
        f"{fhir_server}/{resource_type}",
        params={"subject": f"Patient/{patient}", "_summary": "count"},
        timeout=30,
    ).json()
    return int(bundle["total"])


def test_push_twice_and_again_from_an_empty_ledger_makes_no_duplicates(
    new_client: AppFactory, any_fhir_server: str
) -> None:
    fhir_server = any_fhir_server
    patients = [unique_patient(f"p{n}") for n in range(3)]
    entries = {p: month_of_entries(p) for p in patients}
    infusions = {
        p: [
            infusion(infusion_id=f"{p}-ivig-{n}", patient={"reference": f"Patient/{p}"})
            for n in range(2)
        ]
        for p in patients
    }
    client = new_client()
    for p in patients:
        first = client.post("/sync/diary-entries", json=entries[p], headers=BATCH)
        assert set(outcomes(first)) == {"created"}
        assert set(outcomes(client.post("/sync/infusions", json=infusions[p], headers=BATCH))) == {
            "created"
        }
    counts = {
        p: (
            count_ours(fhir_server, "Observation", p),
            count_ours(fhir_server, "MedicationAdministration", p),
        )
        for p in patients
    }
    assert all(obs > 30 and admins >= 30 + 2 for obs, admins in counts.values())

    again = client.post("/sync/diary-entries", json=entries[patients[0]], headers=BATCH)
    assert set(outcomes(again)) == {"unchanged"}
    fresh = new_client()  # no ledger: idempotence must come from the server requests themselves
    assert set(
        outcomes(fresh.post("/sync/diary-entries", json=entries[patients[1]], headers=BATCH))
    ) <= {"created", "updated"}
    assert set(
        outcomes(fresh.post("/sync/infusions", json=infusions[patients[1]], headers=BATCH))
    ) <= {"created", "updated"}
    for p in patients:
        assert (
            count_ours(fhir_server, "Observation", p),
            count_ours(fhir_server, "MedicationAdministration", p),
        ) == counts[p]
    value = f"diary-entry/{patients[1]}-day-03/fatigue"
    assert count_by_identifier(fhir_server, "Observation", SYSTEM, value) == 1


def test_pulled_records_equal_what_was_pushed(new_client: AppFactory, any_fhir_server: str) -> None:
    patient = unique_patient("pull")
    entries = month_of_entries(patient, days=12)
    infusions = [
        infusion(infusion_id=f"{patient}-ivig", patient={"reference": f"Patient/{patient}"})
    ]
    client = new_client()
    client.post("/sync/diary-entries", json=entries, headers=BATCH)
    client.post("/sync/infusions", json=infusions, headers=BATCH)

    pulled = client.get(f"/patients/{patient}/diary-entries?_count=5", headers=BATCH)
    assert pulled.status_code == HTTPStatus.OK, pulled.json
    assert pulled.json["total"] == 12 and pulled.json["unreadable"] == 0
    got = list(pulled.json["diary_entries"])
    while "next" in pulled.json:
        pulled = client.get(pulled.json["next"], headers=BATCH)
        got.extend(pulled.json["diary_entries"])
    for item in got:
        item["mg_adl"].pop("total")
    assert got == sorted(entries, key=lambda e: e["recorded_at"])

    back = client.get(f"/patients/{patient}/infusions", headers=BATCH).json["infusions"]
    assert len(back) == 1
    back[0].pop("dose_g_per_kg")
    assert back[0] == {"route": "intravenous", "reason": "myasthenia_gravis", **infusions[0]}

    since = entries[5]["recorded_at"]
    window = client.get(
        f"/patients/{patient}/diary-entries", query_string={"since": since}, headers=BATCH
    ).json
    assert window["total"] == 7


def test_a_changed_entry_updates_its_resource_in_place(
    new_client: AppFactory, any_fhir_server: str
) -> None:
    patient = unique_patient("upd")
    entry = month_of_entries(patient, days=1)[0]
    client = new_client()
    created = client.post("/sync/diary-entries", json=entry, headers=BATCH).json["results"][0]
    fatigue_before = next(r for r in created["resources"] if r["resource_type"] == "Observation")
    changed = {**entry, "fatigue": (entry["fatigue"] + 3) % 11}
    updated = client.post("/sync/diary-entries", json=changed, headers=BATCH).json["results"][0]
    assert updated["outcome"] == "updated"
    value = f"diary-entry/{entry['entry_id']}/fatigue"
    assert count_by_identifier(any_fhir_server, "Observation", SYSTEM, value) == 1
    after = {r["id"]: r["version_id"] for r in updated["resources"]}
    before = {r["id"]: r["version_id"] for r in created["resources"]}
    assert after.keys() == before.keys()  # same resources, not new ones
    assert sum(after[i] != before[i] for i in after) == 1  # only the fatigue Observation changed
    assert fatigue_before["id"] in after


def test_a_clinicians_edit_is_a_conflict_not_overwritten(
    new_client: AppFactory, any_fhir_server: str
) -> None:
    fhir_server = any_fhir_server
    patient = unique_patient("conflict")
    entry = month_of_entries(patient, days=1)[0]
    client = new_client()
    client.post("/sync/diary-entries", json=entry, headers=BATCH)
    view = client.get(f"/sync/entries/diary-entry/{entry['entry_id']}", headers=BATCH).json
    fatigue = next(
        r
        for r in view["resources"]
        if r["resource_type"] == "Observation"
        and requests.get(f"{fhir_server}/Observation/{r['id']}", timeout=10)
        .json()
        .get("valueInteger")
        == entry["fatigue"]
    )
    theirs = requests.get(f"{fhir_server}/Observation/{fatigue['id']}", timeout=10).json()
    theirs["note"] = [{"text": "clinician's note (synthetic)"}]
    edited = requests.put(
        f"{fhir_server}/Observation/{fatigue['id']}",
        json=theirs,
        headers={"Content-Type": "application/fhir+json"},
        timeout=10,
    )
    assert edited.ok

    changed = {**entry, "fatigue": (entry["fatigue"] + 1) % 11}
    result = client.post("/sync/diary-entries", json=changed, headers=BATCH).json["results"][0]
    assert result["outcome"] == "conflict"
    view = client.get(f"/sync/entries/diary-entry/{entry['entry_id']}", headers=BATCH).json
    assert view["status"] == "conflict"
    both = view["conflict"][f"Observation/{fatigue['id']}"]
    assert both["theirs"]["note"] == theirs["note"]
    # Relative whatever the server writes, so it reads beside ours (SEKMET-absolute: a URL).
    assert (
        both["theirs"]["subject"] == both["ours"]["subject"] == {"reference": f"Patient/{patient}"}
    )
    assert both["ours"]["valueInteger"] == changed["fatigue"]
    still = requests.get(f"{fhir_server}/Observation/{fatigue['id']}", timeout=10).json()
    assert still["note"] == theirs["note"] and still["valueInteger"] == entry["fatigue"]


def test_a_rejected_resource_is_reported_with_the_servers_outcome_and_others_go_through(
    new_client: AppFactory, any_fhir_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import service.sync.push as push

    patient = unique_patient("reject")
    good, bad = month_of_entries(patient, days=2)
    real = push.mappings.record_to_resources

    def broken(record: Any, ctx: Any) -> list[dict[str, Any]]:
        resources = real(record, ctx)
        if record.entry_id == bad["entry_id"]:
            resources = copy.deepcopy(resources)
            del resources[0]["code"]  # Observation.code is required: the server must refuse it
        return resources

    monkeypatch.setattr(push.mappings, "record_to_resources", broken)
    response = new_client().post("/sync/diary-entries", json=[good, bad], headers=BATCH)
    by_id = {r["id"]: r for r in response.json["results"]}
    assert by_id[good["entry_id"]]["outcome"] == "created"
    rejected = by_id[bad["entry_id"]]
    assert rejected["outcome"] == "failed"
    assert rejected["error"]["status"] in (HTTPStatus.BAD_REQUEST, HTTPStatus.UNPROCESSABLE_ENTITY)
    assert "code" in json.dumps(rejected["error"])


def test_async_accept_answers_202_and_the_worker_delivers(
    new_client: AppFactory, any_fhir_server: str
) -> None:
    patient = unique_patient("async")
    entries = month_of_entries(patient, days=3)
    client = new_client()
    accepted = client.post(
        "/sync/diary-entries", json=entries, headers={**BATCH, "Prefer": "respond-async"}
    )
    assert accepted.status_code == HTTPStatus.ACCEPTED
    status_url = accepted.headers["Content-Location"]
    assert client.get(status_url, headers=BATCH).status_code == HTTPStatus.ACCEPTED
    runtime = wiring.of(client.application).sync
    delivered = runtime.worker().drain()
    assert len(delivered) == 3
    done = client.get(status_url, headers=BATCH)
    assert done.status_code == HTTPStatus.OK and done.json["counts"] == {"sent": 3}
    scraped = client.get("/metrics", headers=BATCH).get_data(as_text=True)
    assert 'diarybridge_push_records_total{outcome="created"} 3.0' in scraped
    assert "diarybridge_push_duration_seconds_count 1.0" in scraped


def test_a_diary_app_syncs_only_its_own_patient(new_client: AppFactory) -> None:
    client = new_client()
    other = diary(entry_id="not-mine", patient={"reference": "Patient/synthetic-mg-002"})
    assert (
        client.post("/sync/diary-entries", json=other, headers=headers("diary_app")).status_code
        == HTTPStatus.FORBIDDEN
    )
    # A write for another patient is refused (403); a read of one is "not there" (404).
    assert (
        client.get(
            "/patients/synthetic-mg-002/diary-entries", headers=headers("diary_app")
        ).status_code
        == HTTPStatus.NOT_FOUND
    )
    mine = client.post("/sync/diary-entries", json=DIARY_ENTRY, headers=headers("diary_app"))
    assert set(outcomes(mine)) <= {"created", "updated", "unchanged"}
    assert INFUSION["patient"] == DIARY_ENTRY["patient"]


def test_a_deleted_entry_is_withdrawn_as_entered_in_error(
    new_client: AppFactory, any_fhir_server: str
) -> None:
    fhir_server = any_fhir_server
    patient = unique_patient("retract")
    entry = month_of_entries(patient, days=1)[0]
    client = new_client()
    pushed = client.post("/sync/diary-entries", json=entry, headers=BATCH).json["results"][0]
    removed = client.delete(f"/sync/diary-entries/{entry['entry_id']}", headers=BATCH)
    assert removed.status_code == HTTPStatus.ACCEPTED
    delivered = wiring.of(client.application).sync.worker().drain()
    assert [d.outcome.value for d in delivered] == ["retracted"]
    for resource in pushed["resources"]:
        on_server = requests.get(
            f"{fhir_server}/{resource['resource_type']}/{resource['id']}", timeout=10
        ).json()
        assert on_server["status"] == "entered-in-error"  # withdrawn, not deleted
    view = client.get(removed.headers["Content-Location"], headers=BATCH).json
    assert view["status"] == "retracted"
    pulled = client.get(f"/patients/{patient}/diary-entries", headers=BATCH).json
    assert pulled["total"] == 0
    assert client.delete("/sync/diary-entries/never-sent", headers=BATCH).status_code == 404


def test_fhir_search_pass_through_pages_with_signed_tokens(
    new_client: AppFactory, any_fhir_server: str
) -> None:
    patient = unique_patient("search")
    client = new_client()
    client.post("/sync/diary-entries", json=month_of_entries(patient, days=2), headers=BATCH)
    client.post(
        "/sync/diary-entries", json=month_of_entries(unique_patient("other"), days=1), headers=BATCH
    )
    first = client.get(f"/patients/{patient}/observations?_count=5", headers=BATCH)
    assert first.status_code == HTTPStatus.OK
    assert first.mimetype == "application/fhir+json"
    seen = [e["resource"]["id"] for e in first.json["entry"]]
    # The server's total passes through where it gave one (nothing was left out here).
    direct = requests.get(
        f"{any_fhir_server}/Observation",
        params={"subject": f"Patient/{patient}", "_count": "5"},
        timeout=30,
    ).json()
    assert first.json["total"] == direct["total"] == 2 * 12  # both servers give one
    page = first.json
    while nxt := next((lk["url"] for lk in page["link"] if lk["relation"] == "next"), None):
        assert "_page=" in nxt and "http" not in nxt.split("_page=")[1]  # opaque, not a URL
        # Absolute and ours, as standard clients follow it: never the FHIR server's URL.
        assert nxt.startswith("http://localhost/patients/") and any_fhir_server not in nxt
        page = client.get(nxt, headers=BATCH).json  # followed exactly as given
        assert page["link"][0] == {"relation": "self", "url": nxt}
        seen.extend(e["resource"]["id"] for e in page["entry"])
        for entry in page["entry"]:
            assert entry["resource"]["subject"]["reference"] == f"Patient/{patient}"
    assert len(seen) == len(set(seen)) == 2 * 12  # every Observation of both entries, once

    forged = client.get(f"/patients/{patient}/observations?_page=aGVsbG8", headers=BATCH)
    assert forged.status_code == HTTPStatus.BAD_REQUEST
    empty = client.get(f"/patients/{patient}/observations?code=", headers=BATCH)
    assert empty.mimetype == "application/fhir+json"  # a FHIR endpoint answers errors in FHIR
    assert empty.json["resourceType"] == "OperationOutcome"
    assert empty.json["issue"] == [
        {
            "severity": "error",
            "code": "invalid",
            "diagnostics": "must not be empty",
            "expression": ["code"],
            "details": {"text": "bad_parameter"},
        }
    ]
    other = client.get(f"/patients/{patient}/observations", headers=headers("diary_app"))
    assert other.status_code == HTTPStatus.NOT_FOUND  # not its patient: "not there"
    assert other.json["issue"][0]["code"] == "not-found"
    anonymous = client.get(f"/patients/{patient}/observations")
    assert anonymous.status_code == HTTPStatus.UNAUTHORIZED
    assert anonymous.json["issue"][0]["code"] == "login"
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    unknown = client.get(f"/patients/{patient}/observations?subject=Patient/x", headers=BATCH)
    assert unknown.status_code == HTTPStatus.BAD_REQUEST


def test_a_conditional_create_that_finds_our_resource_updates_it_and_records_the_truth(
    new_client: AppFactory, fhir_server: str, count_resources: CountByIdentifier
) -> None:
    # The server answers 200 to a conditional create when it already has a resource with our
    # identifier (here: a lost ledger). It did not take what we sent: we must update it.
    patient = unique_patient("condcreate")
    entry = month_of_entries(patient, days=1)[0]
    strategy = {"DIARYBRIDGE_FHIR_PUSH_STRATEGY": "conditional-create"}
    assert set(
        outcomes(new_client(**strategy).post("/sync/diary-entries", json=entry, headers=BATCH))
    ) == {"created"}
    changed = {**entry, "fatigue": (entry["fatigue"] + 4) % 11}
    fresh = new_client(**strategy)  # an empty ledger: nothing known of the first push

    second = fresh.post("/sync/diary-entries", json=changed, headers=BATCH)

    assert outcomes(second) == ["updated"]
    value = f"diary-entry/{entry['entry_id']}/fatigue"
    assert count_resources("Observation", SYSTEM, value) == 1
    found = requests.get(
        f"{fhir_server}/Observation", params={"identifier": f"{SYSTEM}|{value}"}, timeout=10
    ).json()
    assert [e["resource"]["valueInteger"] for e in found["entry"]] == [changed["fatigue"]]
    view = fresh.get(f"/sync/entries/diary-entry/{entry['entry_id']}", headers=BATCH).json
    assert view["status"] == "sent"
    third = fresh.post("/sync/diary-entries", json=changed, headers=BATCH)
    assert outcomes(third) == ["unchanged"]
    # Resent unchanged content from yet another empty ledger finds it all in place.
    assert outcomes(
        new_client(**strategy).post("/sync/diary-entries", json=changed, headers=BATCH)
    ) == ["unchanged"]


def test_two_patients_of_one_app_each_read_only_their_own(
    new_client: AppFactory, any_fhir_server: str
) -> None:
    a, b, nobody = (unique_patient(tag) for tag in ("iso-a", "iso-b", "iso-nobody"))
    keys = {
        p: {
            "key": f"iso-key-{p}",
            "client_id": KEYS["diary_app"]["client_id"],  # one diary app, two patients
            "scopes": "patient/*.read patient/*.write",
            "patient": f"Patient/{p}",
        }
        for p in (a, b)
    }
    client = new_client(DIARYBRIDGE_API_KEYS=json.dumps([*KEYS.values(), *keys.values()]))
    for p in (a, b):
        own = {"X-API-Key": keys[p]["key"]}
        ref = {"reference": f"Patient/{p}"}
        entries = month_of_entries(p, days=2)
        assert set(outcomes(client.post("/sync/diary-entries", json=entries, headers=own))) == {
            "created"
        }
        ivig = infusion(infusion_id=f"{p}-ivig", patient=ref)
        assert outcomes(client.post("/sync/infusions", json=ivig, headers=own)) == ["created"]

    as_a = {"X-API-Key": keys[a]["key"]}
    for route in ("diary-entries", "infusions", "observations", "report"):
        other = client.get(f"/patients/{b}/{route}", headers=as_a)
        unknown = client.get(f"/patients/{nobody}/{route}", headers=as_a)
        assert other.status_code == unknown.status_code == HTTPStatus.NOT_FOUND, route
        assert other.get_data() == unknown.get_data(), route
        assert b not in other.get_data(as_text=True)

    pulled = client.get(f"/patients/{a}/diary-entries", headers=as_a).json
    assert pulled["total"] == 2 and pulled["unreadable"] == 0
    assert {e["patient"]["reference"] for e in pulled["diary_entries"]} == {f"Patient/{a}"}
    found = client.get(f"/patients/{a}/observations?_count=100", headers=as_a).json
    subjects = [e["resource"]["subject"]["reference"] for e in found["entry"]]
    assert subjects == [f"Patient/{a}"] * count_ours(any_fhir_server, "Observation", a)
    report = client.get(f"/patients/{a}/report", headers=as_a)
    assert report.status_code == HTTPStatus.OK
    html = report.get_data(as_text=True)
    assert "2 diary entries" in html and "1 infusions" in html and b not in html


@pytest.mark.parametrize("method", ["conditional-create", "conditional-update"])
def test_server_chosen_ids_are_learnt_from_the_servers_locations(
    new_client: AppFactory, any_fhir_server: str, method: str
) -> None:
    # With conditional writes the server picks the ids: we learn them from response.location
    # (absolute on SEKMET, with "201 Created" as status) and must update those same resources.
    patient = unique_patient("cond")
    entries = month_of_entries(patient, days=2)
    ivig = infusion(infusion_id=f"{patient}-ivig", patient={"reference": f"Patient/{patient}"})
    client = new_client(DIARYBRIDGE_FHIR_PUSH_STRATEGY=method)
    pushed = client.post("/sync/diary-entries", json=entries, headers=BATCH)
    infused = client.post("/sync/infusions", json=ivig, headers=BATCH)
    assert set(outcomes(pushed) + outcomes(infused)) == {"created"}
    results = pushed.json["results"] + infused.json["results"]
    for resource in (r for result in results for r in result["resources"]):
        url = f"{any_fhir_server}/{resource['resource_type']}/{resource['id']}"
        on_server = requests.get(url, timeout=10).json()
        assert on_server["meta"]["versionId"] == resource["version_id"]
    back = client.get(f"/patients/{patient}/infusions", headers=BATCH).json
    assert back["total"] == 1 and back["unreadable"] == 0

    changed = {**entries[0], "fatigue": (entries[0]["fatigue"] + 5) % 11}
    assert outcomes(client.post("/sync/diary-entries", json=changed, headers=BATCH)) == ["updated"]
    value = f"diary-entry/{changed['entry_id']}/fatigue"
    assert count_by_identifier(any_fhir_server, "Observation", SYSTEM, value) == 1
    pulled = client.get(f"/patients/{patient}/diary-entries", headers=BATCH).json
    assert [e["fatigue"] for e in pulled["diary_entries"]] == [
        changed["fatigue"],
        entries[1]["fatigue"],
    ]

"""Two patients of ONE diary app (one client id, a patient-bound API key or JWT per patient)
against the real FHIR server: a record id reused by another patient takes nothing over, and
every ledger read path answers another patient's record exactly as an unknown one.

Each test would have failed before the patient was part of the ledger key: A's post updated
B's resources in place (subject Patient/A), A read B's conflict copy and B's request, and
another patient's id answered 403 where an unknown one answered 404.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from flask.testing import FlaskClient
from jwt.algorithms import RSAAlgorithm

from service import wiring
from service.app import create_app
from service.config import Settings
from tests.api.contract import ContractClient
from tests.api.samples import diary, infusion
from tests.conftest import make_env

pytestmark = pytest.mark.integration

CLIENT_ID = "iso-diary-app"  # one app, many patients
ISSUER = "https://auth.example.test/realms/iso"
AUDIENCE = "https://diarybridge.example.test/api"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
SHARED_ID = "2026-11-02-evening"  # the README's kind of id: two patients will both use it
Json = dict[str, Any]
Headers = Callable[[str], dict[str, str]]


def unique_patient(tag: str) -> str:
    return f"synthetic-iso-{tag}-{datetime.now(UTC).strftime('%H%M%S%f')}"


class World:
    """An app on its own ledger, two patients A and B of one client, credentials for each."""

    def __init__(self, tmp_path: Path, fhir_server: str, credential: str) -> None:
        self.fhir = fhir_server
        self.a, self.b = unique_patient("a"), unique_patient("b")
        self.credential = credential
        self._private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(self._private.public_key()))
        jwk.update(kid="iso-1", alg="RS256", use="sig")
        jwks = tmp_path / "jwks.json"
        jwks.write_text(json.dumps({"keys": [jwk]}), encoding="utf-8")
        keys = [
            {
                "key": f"iso-key-{name}-0123456789",
                "client_id": CLIENT_ID,
                "scopes": "patient/*.read patient/*.write",
                "patient": f"Patient/{patient}",
            }
            for name, patient in (("a", self.a), ("b", self.b))
        ]
        keys.append(  # the same app's backend, without a patient binding
            {
                "key": "iso-key-backend-0123456789",
                "client_id": CLIENT_ID,
                "scopes": "system/*.read system/*.write",
            }
        )
        env = make_env(
            tmp_path,
            DIARYBRIDGE_API_KEYS=json.dumps(keys),
            DIARYBRIDGE_FHIR_BASE_URL=fhir_server,
            DIARYBRIDGE_JWKS_FILE=str(jwks),
            DIARYBRIDGE_JWT_ISSUER=ISSUER,
            DIARYBRIDGE_JWT_AUDIENCE=AUDIENCE,
        )
        app = create_app(Settings.from_env(env))
        app.test_client_class = ContractClient
        self.app = app
        self.client: FlaskClient = app.test_client()

    def headers(self, who: str) -> dict[str, str]:
        """Credentials of patient A or B (API key or JWT, per the test), or the backend."""
        if who == "backend":
            return {"X-API-Key": "iso-key-backend-0123456789"}
        patient = self.a if who == "a" else self.b
        if self.credential == "api_key":
            return {"X-API-Key": f"iso-key-{who}-0123456789"}
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 300,
            "client_id": CLIENT_ID,
            "scope": "openid launch/patient patient/*.read patient/*.write",
            "patient": patient,
        }
        token = jwt.encode(claims, self._private, algorithm="RS256", headers={"kid": "iso-1"})
        return {"Authorization": f"Bearer {token}"}

    def entry(self, who: str, fatigue: int, entry_id: str = SHARED_ID) -> Json:
        patient = self.a if who == "a" else self.b
        return diary(
            entry_id=entry_id, patient={"reference": f"Patient/{patient}"}, fatigue=fatigue
        )

    def unbound_id(self, name: str) -> str:
        """A record id of the unbound caller's, unique to this world: its ids are the app's, and
        the server keeps earlier runs' resources (an id reused for another patient is refused)."""
        return f"{name}-{self.a.rsplit('-', 1)[-1]}"  # the time stamp: no patient id in it

    def post(self, who: str, body: Any, path: str = "/sync/diary-entries") -> Any:
        return self.client.post(path, json=body, headers=self.headers(who))

    def server_copy(self, resource: Json) -> Json:
        url = f"{self.fhir}/{resource['resource_type']}/{resource['id']}"
        body: Json = requests.get(url, timeout=10).json()
        return body

    def drain(self) -> list[str]:
        worker = wiring.of(self.app).sync.worker()
        return [d.outcome.value for d in worker.drain()]


@pytest.fixture(params=["api_key", "jwt"])
def world(request: pytest.FixtureRequest, tmp_path: Path, fhir_server: str) -> World:
    return World(tmp_path, fhir_server, request.param)


def only_result(response: Any) -> Json:
    assert response.status_code == HTTPStatus.OK, response.json
    (result,) = response.json["results"]
    return dict(result)


def test_a_reused_record_id_takes_nothing_over(world: World) -> None:
    b_result = only_result(world.post("b", world.entry("b", fatigue=9)))
    assert b_result["outcome"] == "created"
    b_on_server = {r["id"]: world.server_copy(r) for r in b_result["resources"]}

    a_result = only_result(world.post("a", world.entry("a", fatigue=2)))
    assert a_result["outcome"] == "created"  # A's own, separate record
    a_ids = {r["id"] for r in a_result["resources"]}
    assert a_ids.isdisjoint(b_on_server)

    for server_id, before in b_on_server.items():  # B's data untouched on the server
        resource = {"resource_type": before["resourceType"], "id": server_id}
        after = world.server_copy(resource)
        assert after["meta"]["versionId"] == before["meta"]["versionId"]
        assert after["subject"] == {"reference": f"Patient/{world.b}"}
    for resource in a_result["resources"]:
        assert world.server_copy(resource)["subject"] == {"reference": f"Patient/{world.a}"}

    path = f"/sync/entries/diary-entry/{SHARED_ID}"
    b_view = world.client.get(path, headers=world.headers("b"))
    a_view = world.client.get(path, headers=world.headers("a"))
    assert b_view.status_code == a_view.status_code == HTTPStatus.OK
    assert b_view.json["record"]["fatigue"] == 9 and b_view.json["status"] == "sent"
    assert {r["id"] for r in b_view.json["resources"]} == set(b_on_server)
    assert a_view.json["record"]["fatigue"] == 2

    # The round trip is lossless for both: each pulls its own entry under the app's own id.
    for who, patient, fatigue in (("a", world.a, 2), ("b", world.b, 9)):
        pulled = world.client.get(f"/patients/{patient}/diary-entries", headers=world.headers(who))
        assert pulled.status_code == HTTPStatus.OK, pulled.json
        assert [(e["entry_id"], e["fatigue"]) for e in pulled.json["diary_entries"]] == [
            (SHARED_ID, fatigue)
        ]


def test_a_reused_infusion_id_takes_nothing_over(world: World) -> None:
    def record(patient: str, dose: float) -> Json:
        return infusion(
            infusion_id="ivig-2026-11-10", patient={"reference": f"Patient/{patient}"}, dose_g=dose
        )

    b_result = only_result(world.post("b", record(world.b, 35.0), "/sync/infusions"))
    a_result = only_result(world.post("a", record(world.a, 20.0), "/sync/infusions"))
    assert (b_result["outcome"], a_result["outcome"]) == ("created", "created")
    assert {r["id"] for r in a_result["resources"]}.isdisjoint(
        r["id"] for r in b_result["resources"]
    )
    for resource in b_result["resources"]:
        copy = world.server_copy(resource)
        assert copy["subject"] == {"reference": f"Patient/{world.b}"}
        assert copy["meta"]["versionId"] == next(
            r["version_id"] for r in b_result["resources"] if r["id"] == resource["id"]
        )


def test_a_clinicians_edit_of_b_never_shows_in_as_answer(world: World) -> None:
    b_result = only_result(world.post("b", world.entry("b", fatigue=9)))
    fatigue = next(
        world.server_copy(r)
        for r in b_result["resources"]
        if world.server_copy(r)["identifier"][0]["value"].endswith("/fatigue")
    )
    marker = "synthetic clinician note for B"
    edited = requests.put(
        f"{world.fhir}/Observation/{fatigue['id']}",
        json={**fatigue, "note": [{"text": marker}]},
        headers=FHIR_JSON,
        timeout=10,
    )
    assert edited.ok

    a_post = world.post("a", world.entry("a", fatigue=3))
    assert only_result(a_post)["outcome"] == "created"  # was 412 conflict on B's resource
    a_view = world.client.get(f"/sync/entries/diary-entry/{SHARED_ID}", headers=world.headers("a"))
    answered = json.dumps([a_post.json, a_view.json])
    assert a_view.json["conflict"] is None
    assert marker not in answered and world.b not in answered and fatigue["id"] not in answered

    # B's own change conflicts with the edit, and B (only) sees the clinician's copy.
    b_again = only_result(world.post("b", world.entry("b", fatigue=4)))
    assert b_again["outcome"] == "conflict"
    b_view = world.client.get(f"/sync/entries/diary-entry/{SHARED_ID}", headers=world.headers("b"))
    assert marker in json.dumps(b_view.json["conflict"])
    a_again = world.client.get(f"/sync/entries/diary-entry/{SHARED_ID}", headers=world.headers("a"))
    assert marker not in json.dumps(a_again.json)


def test_request_status_shows_only_the_callers_patients(world: World) -> None:
    b_post = world.post("b", world.entry("b", fatigue=9))
    b_request = b_post.json["status_url"]
    unknown = world.client.get(
        "/sync/requests/00000000-0000-4000-8000-000000000000", headers=world.headers("a")
    )
    foreign = world.client.get(b_request, headers=world.headers("a"))
    assert foreign.status_code == unknown.status_code == HTTPStatus.NOT_FOUND
    assert foreign.json == unknown.json
    own = world.client.get(b_request, headers=world.headers("b"))
    assert own.status_code == HTTPStatus.OK
    assert [i["id"] for i in own.json["items"]] == [SHARED_ID]

    # The backend sends one request for both patients: each patient sees only its item.
    both = [
        world.entry("a", 1, entry_id=world.unbound_id("backend-a-1")),
        world.entry("b", 1, entry_id=world.unbound_id("backend-b-1")),
    ]
    mixed = world.client.post(
        "/sync/diary-entries",
        json=both,
        headers={**world.headers("backend"), "Prefer": "respond-async"},
    )
    assert mixed.status_code == HTTPStatus.ACCEPTED
    seen = {
        who: world.client.get(mixed.json["status_url"], headers=world.headers(who)).json
        for who in ("a", "b", "backend")
    }
    assert [i["id"] for i in seen["a"]["items"]] == [world.unbound_id("backend-a-1")]
    assert [i["id"] for i in seen["b"]["items"]] == [world.unbound_id("backend-b-1")]
    assert seen["a"]["counts"] == {"queued": 1}
    assert sorted(i["id"] for i in seen["backend"]["items"]) == sorted(
        world.unbound_id(name) for name in ("backend-a-1", "backend-b-1")
    )


def test_another_patients_record_answers_as_an_unknown_one(world: World) -> None:
    only_result(world.post("b", world.entry("b", fatigue=9, entry_id="only-b")))
    answers = {
        (method, target): getattr(world.client, method)(path, headers=world.headers("a"))
        for method, prefix in (
            ("get", "/sync/entries/diary-entry"),
            ("delete", "/sync/diary-entries"),
        )
        for target, path in (("b", f"{prefix}/only-b"), ("none", f"{prefix}/never-sent-x"))
    }
    for method in ("get", "delete"):
        foreign, unknown = answers[(method, "b")], answers[(method, "none")]
        assert foreign.status_code == unknown.status_code == HTTPStatus.NOT_FOUND
        assert foreign.json == unknown.json
        assert foreign.get_data() == unknown.get_data()  # byte for byte: no oracle


def test_delete_withdraws_only_the_callers_own_record(world: World) -> None:
    b_result = only_result(world.post("b", world.entry("b", fatigue=9)))
    a_result = only_result(world.post("a", world.entry("a", fatigue=2)))
    only_result(world.post("b", world.entry("b", fatigue=5, entry_id="only-b")))

    refused = world.client.delete("/sync/diary-entries/only-b", headers=world.headers("a"))
    assert refused.status_code == HTTPStatus.NOT_FOUND
    removed = world.client.delete(f"/sync/diary-entries/{SHARED_ID}", headers=world.headers("a"))
    assert removed.status_code == HTTPStatus.ACCEPTED
    assert world.drain() == ["retracted"]

    for resource in a_result["resources"]:
        assert world.server_copy(resource)["status"] == "entered-in-error"
    for resource in b_result["resources"]:
        assert world.server_copy(resource)["status"] != "entered-in-error"
    b_view = world.client.get(f"/sync/entries/diary-entry/{SHARED_ID}", headers=world.headers("b"))
    assert b_view.json["status"] == "sent"
    only_b = world.client.get("/sync/entries/diary-entry/only-b", headers=world.headers("b"))
    assert only_b.json["status"] == "sent"
    pulled = world.client.get(f"/patients/{world.b}/diary-entries", headers=world.headers("b"))
    assert sorted(e["entry_id"] for e in pulled.json["diary_entries"]) == [SHARED_ID, "only-b"]


def test_an_unbound_caller_reusing_an_id_for_another_patient_gets_409(world: World) -> None:
    backend = world.headers("backend")
    first = world.client.post(
        "/sync/diary-entries",
        json=world.entry("b", 9, entry_id=world.unbound_id("backend-1")),
        headers=backend,
    )
    assert only_result(first)["outcome"] == "created"
    reused = world.client.post(
        "/sync/diary-entries",
        json=world.entry("a", 2, entry_id=world.unbound_id("backend-1")),
        headers=backend,
    )
    assert reused.status_code == HTTPStatus.CONFLICT
    assert reused.json["error"] == "record_of_another_patient"
    assert [p["field"] for p in reused.json["problems"]] == ["patient"]
    assert world.a not in reused.get_data(as_text=True)
    assert world.b not in reused.get_data(as_text=True)
    for resource in only_result(first)["resources"]:
        copy = world.server_copy(resource)
        assert copy["subject"] == {"reference": f"Patient/{world.b}"}
        assert copy["meta"]["versionId"] == resource["version_id"]
    # The backend's record of B is the one B's own credential finds (no second record).
    b_again = world.post("b", world.entry("b", 9, entry_id=world.unbound_id("backend-1")))
    assert only_result(b_again)["outcome"] == "unchanged"


def test_an_unbound_caller_names_the_patient_where_two_share_an_id(world: World) -> None:
    only_result(world.post("a", world.entry("a", fatigue=2)))
    only_result(world.post("b", world.entry("b", fatigue=9)))
    path = f"/sync/entries/diary-entry/{SHARED_ID}"
    backend = world.headers("backend")
    ambiguous = world.client.get(path, headers=backend)
    assert ambiguous.status_code == HTTPStatus.CONFLICT
    assert [p["field"] for p in ambiguous.json["problems"]] == ["patient"]
    chosen = world.client.get(path, query_string={"patient": f"Patient/{world.b}"}, headers=backend)
    assert chosen.status_code == HTTPStatus.OK and chosen.json["record"]["fatigue"] == 9

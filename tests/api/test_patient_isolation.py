"""Two patients of one diary app: each reads only their own, whatever the FHIR server answers.

The FHIR server is faked with `responses` because no real server misbehaves on purpose: this one
ignores the subject filter (it returns both patients' resources for every search) and writes
absolute references, like Firely or SEKMET with absolute_references.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import responses
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient
from jwt.algorithms import RSAAlgorithm

import mappings
from mappings.context import MappingContext
from mappings.identifiers import business_identifier
from service.app import create_app
from service.config import Settings
from service.schemas import RecordKind, load_records
from tests.api.samples import diary, infusion
from tests.conftest import KEYS, make_env

BASE = "https://fhir.clinic.test/fhir"
OTHER_BASE = "https://other.clinic.test/fhir"
CLIENT_ID = "mg-diary-app"  # one diary app, many patients
A, B, NOBODY = "synthetic-iso-a", "synthetic-iso-b", "synthetic-iso-nobody"
ISSUER, AUDIENCE = "https://auth.example.test/realms/diary", "https://diarybridge.example.test/api"
PATIENT_KEYS = {
    patient: {
        "key": f"iso-key-{patient}-0123456789",
        "client_id": CLIENT_ID,
        "scopes": "patient/*.read patient/*.write",
        "patient": f"Patient/{patient}",
    }
    for patient in (A, B)
}
ROUTES = ("diary-entries", "infusions", "observations", "report")
DAYS = 3


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def app(tmp_path: Path, signing_key: rsa.RSAPrivateKey) -> Iterator[Flask]:
    jwk = json.loads(RSAAlgorithm.to_jwk(signing_key.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "iso-1", "alg": "RS256"}]}))
    env = make_env(
        tmp_path,
        DIARYBRIDGE_FHIR_BASE_URL=BASE,
        DIARYBRIDGE_API_KEYS=json.dumps([*KEYS.values(), *PATIENT_KEYS.values()]),
        DIARYBRIDGE_JWKS_FILE=str(jwks),
        DIARYBRIDGE_JWT_ISSUER=ISSUER,
        DIARYBRIDGE_JWT_AUDIENCE=AUDIENCE,
    )
    yield create_app(Settings.from_env(env))


def bearer(key: rsa.RSAPrivateKey, patient: str) -> dict[str, str]:
    """A SMART patient-launch token of the diary app for `patient`."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "client_id": CLIENT_ID,
        "scope": "launch/patient patient/*.read",
        "patient": patient,
    }
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "iso-1"})
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(params=["api-key", "jwt"])
def as_a(request: pytest.FixtureRequest, signing_key: rsa.RSAPrivateKey) -> dict[str, str]:
    """Patient A's credentials: a patient-bound API key, or a JWT with A's launch context."""
    if request.param == "api-key":
        return {"X-API-Key": PATIENT_KEYS[A]["key"]}
    return bearer(signing_key, A)


def absolute(node: Any, base: str = BASE) -> Any:
    """Every relative reference written as a URL under `base`, as SEKMET-absolute answers."""
    if isinstance(node, dict):
        return {
            k: (
                f"{base}/{v}"
                if k == "reference" and isinstance(v, str) and not v.startswith("#")
                else absolute(v, base)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [absolute(v, base) for v in node]
    return node


def resources_of(patient: str) -> list[dict[str, Any]]:
    """A patient's FHIR resources as the app would have pushed them: 3 entries, 1 infusion."""
    ref = {"reference": f"Patient/{patient}"}
    entries = [
        diary(entry_id=f"{patient}-day-{d}", patient=ref, recorded_at=f"2026-11-0{d + 1}T20:00Z")
        for d in range(DAYS)
    ]
    records = load_records(entries, RecordKind.DIARY_ENTRY) + load_records(
        infusion(infusion_id=f"{patient}-ivig", patient=ref), RecordKind.INFUSION
    )
    ctx = MappingContext(app_namespace=CLIENT_ID, source=f"urn:diarybridge:client:{CLIENT_ID}")
    return [resource for r in records for resource in mappings.record_to_resources(r, ctx)]


class LyingServer:
    """Answers every search with both patients' resources, whatever the subject asked for."""

    def __init__(self, rsps: responses.RequestsMock) -> None:
        self.resources = resources_of(A) + resources_of(B)
        self.subjects: list[str] = []
        for resource_type in ("Observation", "MedicationAdministration", "AdverseEvent"):
            rsps.add_callback(responses.GET, f"{BASE}/{resource_type}", self._search)

    def _search(self, request: Any) -> tuple[int, dict[str, str], str]:
        path = urlsplit(request.url).path
        query = parse_qs(urlsplit(request.url).query)
        self.subjects.extend(query.get("subject", []))
        resource_type = path.rsplit("/", 1)[-1]
        entries = [
            {"fullUrl": f"{BASE}/{r['resourceType']}/{r['id']}", "resource": absolute(r)}
            for r in self.resources
            if r["resourceType"] == resource_type
        ]
        bundle = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
        return HTTPStatus.OK, {"Content-Type": "application/fhir+json"}, json.dumps(bundle)


@pytest.fixture
def server() -> Iterator[LyingServer]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield LyingServer(rsps)


def count_of(resource_type: str, patient: str) -> int:
    return sum(1 for r in resources_of(patient) if r["resourceType"] == resource_type)


@pytest.mark.parametrize("route", ROUTES)
def test_another_patient_of_the_same_app_answers_like_an_unknown_one(
    client: FlaskClient, server: LyingServer, as_a: dict[str, str], route: str
) -> None:
    other = client.get(f"/patients/{B}/{route}", headers=as_a)
    unknown = client.get(f"/patients/{NOBODY}/{route}", headers=as_a)
    # "Not yours" is "not there": the 404 an unknown patient (or an impossible id) gets.
    malformed = client.get(f"/patients/no_such_id/{route}", headers=as_a)
    assert other.status_code == unknown.status_code == malformed.status_code == HTTPStatus.NOT_FOUND
    assert other.get_data() == unknown.get_data() == malformed.get_data()
    assert other.headers["Content-Type"] == unknown.headers["Content-Type"]
    assert B not in other.get_data(as_text=True)
    assert server.subjects == []  # refused before anything was read from the server
    # ...while B's own credential, of the same app, is answered.
    own = client.get(f"/patients/{B}/{route}", headers={"X-API-Key": PATIENT_KEYS[B]["key"]})
    assert own.status_code == HTTPStatus.OK


def test_pulls_keep_only_the_callers_patient_when_the_server_ignores_the_filter(
    client: FlaskClient, server: LyingServer, as_a: dict[str, str]
) -> None:
    entries = client.get(f"/patients/{A}/diary-entries", headers=as_a)
    assert entries.status_code == HTTPStatus.OK
    assert entries.json["total"] == DAYS and entries.json["unreadable"] == 0
    assert {e["patient"]["reference"] for e in entries.json["diary_entries"]} == {f"Patient/{A}"}
    infusions = client.get(f"/patients/{A}/infusions", headers=as_a)
    assert infusions.status_code == HTTPStatus.OK
    assert [i["patient"] for i in infusions.json["infusions"]] == [{"reference": f"Patient/{A}"}]
    assert infusions.json["unreadable"] == 0
    for answer in (entries, infusions):
        assert B not in answer.get_data(as_text=True)
    assert set(server.subjects) == {f"Patient/{A}"}  # we asked for A only; the server ignored it


def test_pass_through_search_keeps_only_the_callers_patient(
    client: FlaskClient, server: LyingServer, as_a: dict[str, str]
) -> None:
    found = client.get(f"/patients/{A}/observations", headers=as_a)
    assert found.status_code == HTTPStatus.OK
    subjects = [e["resource"]["subject"]["reference"] for e in found.json["entry"]]
    # Every one of A's (absolute on the wire, relative to the server's base now), none of B's.
    assert subjects == [f"Patient/{A}"] * count_of("Observation", A)
    assert B not in found.get_data(as_text=True)


def test_the_report_shows_only_the_callers_patient(
    client: FlaskClient, server: LyingServer, as_a: dict[str, str]
) -> None:
    page = client.get(f"/patients/{A}/report", headers=as_a)
    assert page.status_code == HTTPStatus.OK
    html = page.get_data(as_text=True)
    assert f"{DAYS} diary entries" in html and "1 infusions" in html
    assert B not in html


def test_a_reference_to_another_base_is_counted_not_followed(
    client: FlaskClient, server: LyingServer, as_a: dict[str, str]
) -> None:
    moved = f"{A}-day-1"
    for index, resource in enumerate(server.resources):
        _, value = business_identifier(resource)  # R4 AdverseEvent has one, not a list
        if value == f"diary-entry/{moved}/fatigue":
            # One Observation of the entry is about a patient of another server.
            subject = {"reference": f"{OTHER_BASE}/Patient/{A}"}
            server.resources[index] = {**resource, "subject": subject}
        if resource["resourceType"] == "MedicationAdministration" and value.startswith(
            f"infusion/{A}-ivig/"
        ):
            # The infusion names a performer of another server (the app can only send Type/id).
            actor = {"reference": f"{OTHER_BASE}/Practitioner/p1", "display": "synthetic"}
            server.resources[index] = {**resource, "performer": [{"actor": actor}]}
    entries = client.get(f"/patients/{A}/diary-entries", headers=as_a).json
    # The whole entry is unreadable: never read back with one of its parts missing.
    assert entries["total"] == DAYS - 1 and entries["unreadable"] == 1
    assert moved not in {e["entry_id"] for e in entries["diary_entries"]}
    infusions = client.get(f"/patients/{A}/infusions", headers=as_a).json
    assert infusions["total"] == 0 and infusions["unreadable"] == 1
    found = client.get(f"/patients/{A}/observations", headers=as_a).json
    assert len(found["entry"]) == count_of("Observation", A) - 1
    assert OTHER_BASE not in json.dumps(found)

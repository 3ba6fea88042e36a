"""Two patients of one diary app (one client id) export through DiaryBridge from SEKMET.

SEKMET ignores `patient` on $export (tests/sekmet_server/README.md) and answers absolute
references, so this is the case of issue 9 item 3: patient A's export must hold none of B's
resources, whichever credential (API key or JWT) and whichever way the server behaves, and
another patient's job must look exactly like no job at all.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from http import HTTPStatus
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient
from jwt.algorithms import RSAAlgorithm

import mappings
from mappings.context import MappingContext
from mappings.records import DiaryEntry, PatientRef, Record
from service.app import create_app
from service.config import Settings
from service.exports import fhir_source
from service.fhir_client import FhirClient
from service.fhir_client.references import relative_reference
from tests.api.contract import ContractClient
from tests.conftest import make_env
from tests.unit.exports.export_synthetic import batch_put, records

pytestmark = pytest.mark.integration

CLIENT = "mg-diary-app"
RUN = uuid.uuid4().hex[:8]  # the session's SEKMET is shared: patients of this module's own
A, B, C = (f"Patient/iso-export-{RUN}-{name}" for name in "abc")
ISSUER, AUDIENCE = "https://auth.example.test/realms/diary", "https://diarybridge.example.test"
KEYS = {
    "a": {"key": "iso-a-key-0123456789", "client_id": CLIENT, "scopes": "patient/*.read"},
    "b": {"key": "iso-b-key-0123456789", "client_id": CLIENT, "scopes": "patient/*.read"},
    "system": {"key": "iso-sys-key-0123456789", "client_id": "registry", "scopes": "system/*.read"},
}
KEYS["a"]["patient"], KEYS["b"]["patient"] = A, B
TYPES = ("Observation", "MedicationAdministration")


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def loaded(sekmet_server_absolute: str) -> dict[str, list[dict[str, Any]]]:
    """Records of A, B and C, all by the same app, on the server; resources by patient."""
    patients = {0: A, 1: B, 2: C}

    def own(index: int, record: Record) -> Record:
        # Ids derive from the namespace and record ids: this run's own, as the patients are.
        field = "entry_id" if isinstance(record, DiaryEntry) else "infusion_id"
        return replace(
            record,
            patient=PatientRef(reference=patients[index % 3]),
            **{field: f"{getattr(record, field)}-{RUN}"},
        )

    mine = [own(i, r) for i, r in enumerate(records(45, patients=1, seed=11))]
    ctx = MappingContext(app_namespace=CLIENT, source=f"urn:diarybridge:client:{CLIENT}")
    resources = mappings.to_resources(mine, ctx)
    # The clinic's Patient resources: SEKMET's Patient/$export covers the patients it holds.
    people = [{"resourceType": "Patient", "id": p.removeprefix("Patient/")} for p in (A, B, C)]
    with FhirClient(sekmet_server_absolute) as fhir:
        batch_put(fhir, people + resources)
    by_patient: dict[str, list[dict[str, Any]]] = {A: [], B: [], C: []}
    for resource in resources:
        by_patient[resource["subject"]["reference"]].append(resource)
    return by_patient


@pytest.fixture
def app(
    tmp_path: Path, sekmet_server_absolute: str, signing_key: rsa.RSAPrivateKey
) -> Iterator[Flask]:
    jwk = json.loads(RSAAlgorithm.to_jwk(signing_key.public_key()))
    jwk.update(kid="iso-1", alg="RS256", use="sig")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk]}))
    env = make_env(
        tmp_path,
        DIARYBRIDGE_FHIR_BASE_URL=sekmet_server_absolute,
        DIARYBRIDGE_API_KEYS=json.dumps(list(KEYS.values())),
        DIARYBRIDGE_JWKS_FILE=str(jwks),
        DIARYBRIDGE_JWT_ISSUER=ISSUER,
        DIARYBRIDGE_JWT_AUDIENCE=AUDIENCE,
    )
    app = create_app(Settings.from_env(env))
    app.test_client_class = ContractClient
    yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def auth(signing_key: rsa.RSAPrivateKey) -> Any:
    def headers(who: str) -> dict[str, str]:
        if who.startswith("jwt-"):
            patient = {"jwt-a": A, "jwt-b": B}[who]
            now = int(time.time())
            claims = {
                "iss": ISSUER,
                "aud": AUDIENCE,
                "iat": now,
                "exp": now + 300,
                "client_id": CLIENT,
                "scope": "launch/patient patient/*.rs",
                "patient": patient.removeprefix("Patient/"),  # SMART: a bare id
            }
            token = jwt.encode(claims, signing_key, algorithm="RS256", headers={"kid": "iso-1"})
            return {"Authorization": f"Bearer {token}"}
        return {"X-API-Key": str(KEYS[who]["key"])}

    return headers


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def run(client: FlaskClient, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    started = client.post("/exports", json=body, headers=headers)
    assert started.status_code == HTTPStatus.ACCEPTED, started.get_json()
    status = path_of(started.headers["Content-Location"])
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        answer = client.get(status, headers=headers)
        if answer.status_code != HTTPStatus.ACCEPTED:
            assert answer.status_code == HTTPStatus.OK, answer.get_json()
            return {"status": status, **answer.get_json()}
        time.sleep(0.1)
    raise AssertionError("export not done within 90 s")


def files(client: FlaskClient, headers: dict[str, str], manifest: dict[str, Any]) -> Any:
    got: dict[str, list[dict[str, Any]]] = {}
    for item in manifest["output"]:
        body = client.get(path_of(item["url"]), headers=headers)
        assert body.status_code == HTTPStatus.OK
        got[item["type"]] = [json.loads(x) for x in body.get_data(as_text=True).splitlines()]
    return got


@pytest.fixture(params=["strict", "silent"])
def server_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """strict: SEKMET as it is (refuses `patient` under strict handling: search is used).
    silent: SEKMET as a server that ignores `patient` and hides it (no strict, no error[]):
    its everyone-export reaches the patient check itself."""
    if request.param == "silent":
        real = fhir_source.kick_off
        monkeypatch.setattr(
            fhir_source, "kick_off", lambda *a, **k: real(*a, **k | {"strict": False})
        )
        monkeypatch.setattr(fhir_source, "ignored_parameter_issues", lambda _: 0)
    return str(request.param)


@pytest.mark.parametrize(("who", "patient"), [("a", A), ("jwt-a", A), ("b", B), ("jwt-b", B)])
def test_a_patients_export_holds_that_patient_only(
    client: FlaskClient,
    auth: Any,
    loaded: dict[str, list[dict[str, Any]]],
    server_mode: str,
    sekmet_server_absolute: str,
    who: str,
    patient: str,
) -> None:
    manifest = run(client, auth(who), {"types": list(TYPES)})
    got = files(client, auth(who), manifest)
    for t in TYPES:
        want = sorted(r["id"] for r in loaded[patient] if r["resourceType"] == t)
        assert sorted(r["id"] for r in got.get(t, [])) == want and want
        subjects = {
            relative_reference(r["subject"]["reference"], sekmet_server_absolute) for r in got[t]
        }
        assert subjects == {patient}
    check = manifest["extension"]["patientCheck"]
    if server_mode == "silent":
        # Everyone's resources came (other tests' too): all but this patient's dropped, counted.
        assert manifest["extension"]["fetchedBy"] == "bulk"
        assert check["notJobPatients"] >= len(loaded[A]) + len(loaded[B]) + len(loaded[C]) - len(
            loaded[patient]
        )
        assert check["checked"] == check["notJobPatients"] + len(loaded[patient])
    else:
        assert manifest["extension"]["fetchedBy"] == "search"
        assert check == {
            "checked": len(loaded[patient]),
            "notJobPatients": 0,
            "foreignReferences": 0,
        }


def test_records_export_of_a_holds_a_only(
    client: FlaskClient, auth: Any, loaded: dict[str, list[dict[str, Any]]], server_mode: str
) -> None:
    manifest = run(client, auth("a"), {"format": "records"})
    got = files(client, auth("a"), manifest)
    entries = got.get("diary-entry", []) + got.get("infusion", [])
    assert entries
    assert {e["patient"]["reference"] for e in entries} == {A}  # relative, as the app sent it


def test_a_system_caller_naming_a_patient_gets_that_patient_only(
    client: FlaskClient, auth: Any, loaded: dict[str, list[dict[str, Any]]], server_mode: str
) -> None:
    manifest = run(client, auth("system"), {"patient": C, "types": ["Observation"]})
    got = files(client, auth("system"), manifest)
    want = sorted(r["id"] for r in loaded[C] if r["resourceType"] == "Observation")
    assert sorted(r["id"] for r in got["Observation"]) == want


def test_another_patients_job_answers_exactly_like_no_job(
    client: FlaskClient, auth: Any, loaded: dict[str, list[dict[str, Any]]]
) -> None:
    manifest = run(client, auth("a"), {"types": ["Observation"]})
    status = manifest["status"]
    file_path = path_of(manifest["output"][0]["url"])
    unknown = f"/exports/{uuid.uuid4()}"
    checks = 0
    for who in ("b", "jwt-b", "system"):
        for method, path, same_as in [
            ("GET", status, unknown),
            ("GET", file_path, f"{unknown}/files/Observation.ndjson"),
            ("DELETE", status, unknown),
        ]:
            theirs = client.open(path, method=method, headers=auth(who))
            nothing = client.open(same_as, method=method, headers=auth(who))
            assert theirs.status_code == nothing.status_code == HTTPStatus.NOT_FOUND
            assert theirs.get_data() == nothing.get_data()
            checks += 1
    assert checks == 9
    # Nothing they did touched A's job; A's other credential (same client, same patient) sees it.
    for who in ("a", "jwt-a"):
        assert client.get(status, headers=auth(who)).status_code == HTTPStatus.OK
        assert client.get(file_path, headers=auth(who)).status_code == HTTPStatus.OK
    assert client.delete(status, headers=auth("jwt-a")).status_code == HTTPStatus.ACCEPTED
    assert client.get(status, headers=auth("a")).status_code == HTTPStatus.NOT_FOUND

"""SMART's own bulk client (PyPI smart-fetch) exports from a running DiaryBridge, unchanged.

Real pieces only: the Medplum test server holds the data; DiaryBridge serves HTTP on
127.0.0.1 (werkzeug's server in a thread); a tiny authorization server on 127.0.0.1 checks
smart-fetch's signed client assertion (SMART backend services, private_key_jwt) and issues
an access JWT that DiaryBridge verifies against the JWKS it is configured to trust.
smart-fetch discovers the token endpoint in /.well-known/smart-configuration, kicks off
[base]/$export, polls, downloads and DELETEs; its files must equal a direct search.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from werkzeug.serving import make_server

import mappings
from mappings.context import MappingContext
from service.app import create_app
from service.cli import main
from service.config import Settings
from service.fhir_client import FhirClient
from service.schemas import RecordKind, load_records
from tests.api.samples import DIARY_ENTRY
from tests.conftest import make_env
from tests.fhir_server import RunningServer, start_fhir_server
from tests.integration.test_gunicorn import free_port
from tests.unit.exports.export_synthetic import batch_put, resources

pytestmark = pytest.mark.integration

TYPES = ("Observation", "MedicationAdministration")
CLIENT_ID = "registry-bulk-client"
AS_KID = "synthetic-as-key-1"
SMART_FETCH_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def clinic() -> Iterator[RunningServer]:
    """A Medplum test server of this module's own, with synthetic records pushed first."""
    running = start_fhir_server(persist=False)
    with FhirClient(running.base_url) as fhir:
        batch_put(fhir, resources(30))
        own = load_records(DIARY_ENTRY, RecordKind.DIARY_ENTRY)
        batch_put(fhir, mappings.to_resources(own, MappingContext("mg-diary-app", "urn:app")))
    yield running
    running.stop()


class AuthorizationServer:
    """SMART backend services token endpoint: client assertion in, access JWT out."""

    def __init__(self, client_public_key: Any, audience: str) -> None:
        self.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.client_public_key = client_public_key
        self.audience = audience
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.token_url = f"{self.issuer}/token"
        self.issued: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.signing_key.public_key()))
        jwk.update(kid=AS_KID, use="sig", alg="RS384")
        return {"keys": [jwk]}

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("grant_type") != "client_credentials" or form.get("client_assertion_type") != (
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ):
            return 400, {"error": "unsupported_grant_type"}
        try:
            assertion = jwt.decode(
                form.get("client_assertion", ""),
                self.client_public_key,
                algorithms=["RS384"],
                audience=self.token_url,
                issuer=CLIENT_ID,
                options={"require": ["exp", "iss", "sub", "aud", "jti"]},
            )
        except jwt.PyJWTError:
            return 401, {"error": "invalid_client"}
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": assertion["sub"],
            "client_id": assertion["sub"],
            "scope": form.get("scope", ""),
            "iat": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
        }
        self.issued.append(claims)
        access = jwt.encode(claims, self.signing_key, algorithm="RS384", headers={"kid": AS_KID})
        return 200, {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": 300,
            "scope": claims["scope"],
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                status, body = outer.token(form) if self.path == "/token" else (404, {})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return None  # quiet: pytest shows failures, not every token request

        return Handler

    def __enter__(self) -> AuthorizationServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def client_key(tmp_path: Path) -> tuple[Any, Path]:
    """smart-fetch's private key (a PEM file, as its --smart-key takes)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "client-key.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key.public_key(), pem


@pytest.fixture
def stack(
    tmp_path: Path, clinic: RunningServer, client_key: tuple[Any, Path]
) -> Iterator[tuple[str, AuthorizationServer]]:
    """DiaryBridge on 127.0.0.1 trusting the authorization server's keys; (base URL, AS)."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with AuthorizationServer(client_key[0], audience=base_url) as auth:
        jwks_file = tmp_path / "as-jwks.json"
        jwks_file.write_text(json.dumps(auth.jwks()))
        env = make_env(
            tmp_path,
            DIARYBRIDGE_FHIR_BASE_URL=clinic.base_url,
            DIARYBRIDGE_JWKS_FILE=str(jwks_file),
            DIARYBRIDGE_JWT_ISSUER=auth.issuer,
            DIARYBRIDGE_JWT_AUDIENCE=base_url,
            DIARYBRIDGE_SMART_TOKEN_URL=auth.token_url,
            DIARYBRIDGE_LOG_LEVEL="WARNING",
        )
        app = create_app(Settings.from_env(env))
        server = make_server("127.0.0.1", port, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield base_url, auth
        finally:
            server.shutdown()


def direct_search(base_url: str) -> dict[str, dict[str, Any]]:
    """Every resource of our types on the clinic server, by Type/id, by plain paged search."""
    with FhirClient(base_url) as fhir:
        return {f"{t}/{r['id']}": r for t in TYPES for r in fhir.search(t, [], page_size=1000)}


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def read_ndjson(folder: Path) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.ndjson")):
        if path.name.split(".")[0] not in TYPES:
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            resource = json.loads(line)
            key = f"{resource['resourceType']}/{resource['id']}"
            assert key not in found, f"{key} exported twice"
            found[key] = resource
    return found


def smart_fetch() -> str:
    beside_python = Path(sys.executable).with_name("smart-fetch")
    assert beside_python.exists(), "smart-fetch is not installed (pip install -e '.[test]')"
    return str(beside_python)


def test_smart_fetch_exports_what_a_direct_search_finds(
    tmp_path: Path,
    clinic: RunningServer,
    client_key: tuple[Any, Path],
    stack: tuple[str, AuthorizationServer],
) -> None:
    base_url, auth = stack
    out = tmp_path / "smart-fetch-out"
    command = [
        smart_fetch(),
        "bulk",
        str(out),
        "--fhir-url",
        base_url,
        "--smart-client-id",
        CLIENT_ID,
        "--smart-key",
        str(client_key[1]),
        # smart-fetch 1.0.3 knows no MedicationAdministration (its PATIENT_TYPES list); the
        # plain-HTTP test below exports both types.
        "--type",
        "Observation",
        # Its default Observation category _typeFilter is one we would ignore (lenient):
        # leave it off so "equal to a direct search" is the whole claim.
        "--no-default-filters",
        "--no-compression",
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=SMART_FETCH_TIMEOUT_S,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    exported = read_ndjson(out)
    expected = {k: r for k, r in direct_search(clinic.base_url).items() if k.startswith("Obs")}
    assert len(expected) > 30
    assert exported.keys() == expected.keys()
    assert exported == expected

    # It really went through the standard doors: a token from the AS, a system-level kick-off,
    # and the job deleted at the end (smart-fetch DELETEs it after downloading).
    assert auth.issued and all(c["client_id"] == CLIENT_ID for c in auth.issued)
    assert "system/Observation.read" in auth.issued[0]["scope"].split()
    log = [json.loads(line) for line in (out / "log.ndjson").read_text().splitlines()]
    kickoff = next(e for e in log if e["eventId"] == "kickoff")
    assert kickoff["eventDetail"]["exportUrl"].startswith(f"{base_url}/$export?")
    assert kickoff["eventDetail"]["errorCode"] is None
    status_url = kickoff["exportId"]
    assert status_url.startswith(f"{base_url}/exports/")
    token = jwt.encode(
        {**auth.issued[-1], "exp": int(time.time()) + 60},
        auth.signing_key,
        algorithm="RS384",
        headers={"kid": AS_KID},
    )
    gone = requests.get(status_url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert gone.status_code == 404
    assert gone.json()["resourceType"] == "OperationOutcome"


def test_a_named_cli_job_exports_only_what_changed_since_its_last_run(
    tmp_path: Path, clinic: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")

    def nightly(out: Path, *extra: str) -> dict[str, Any]:
        argv = ["export", "--out", str(out), "--fhir-base-url", clinic.base_url]
        assert main([*argv, "--type", "Observation", "--job-name", "nightly", *extra]) == 0
        return json.loads((out / "manifest.json").read_text())

    first = nightly(tmp_path / "run-1")
    assert first["output"][0]["count"] == len(
        [k for k in direct_search(clinic.base_url) if k.startswith("Observation/")]
    )
    # One diary entry changes on the clinic server after the first run.
    time.sleep(1.1)  # past the first run's transactionTime at the server's clock resolution
    changed = resources(1, seed=99)
    with FhirClient(clinic.base_url) as fhir:
        batch_put(fhir, changed)
    second = nightly(tmp_path / "run-2")
    assert second["transactionTime"] > first["transactionTime"]
    got = read_ndjson(tmp_path / "run-2")
    updated_since = {
        key
        for key, r in direct_search(clinic.base_url).items()
        if key.startswith("Observation/")
        and instant(r["meta"]["lastUpdated"]) >= instant(first["transactionTime"])
    }
    assert got and set(got) == updated_since
    assert set(got) <= {f"Observation/{r['id']}" for r in changed}

    # A third run with nothing new exports nothing; an explicit --since still wins.
    assert nightly(tmp_path / "run-3")["output"] == []
    everything = nightly(tmp_path / "run-4", "--since", "2000-01-01T00:00:00Z")
    assert everything["output"][0]["count"] == len(
        [k for k in direct_search(clinic.base_url) if k.startswith("Observation/")]
    )


def backend_services_token(base_url: str, pem: Path) -> str:
    """SMART backend services by the book: discover the token endpoint, sign, exchange."""
    config = requests.get(f"{base_url}/.well-known/smart-configuration", timeout=10).json()
    assert "client-confidential-asymmetric" in config["capabilities"]
    key = serialization.load_pem_private_key(pem.read_bytes(), password=None)
    now = int(time.time())
    assertion = jwt.encode(
        {
            "iss": CLIENT_ID,
            "sub": CLIENT_ID,
            "aud": config["token_endpoint"],
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
        },
        key,  # type: ignore[arg-type]
        algorithm="RS384",
    )
    answer = requests.post(
        config["token_endpoint"],
        data={
            "grant_type": "client_credentials",
            "scope": " ".join(f"system/{t}.read" for t in TYPES),
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def test_the_ig_flow_by_the_book_with_a_parameters_body(
    clinic: RunningServer, client_key: tuple[Any, Path], stack: tuple[str, AuthorizationServer]
) -> None:
    base_url, _auth = stack
    auth = {"Authorization": f"Bearer {backend_services_token(base_url, client_key[1])}"}
    statement = requests.get(f"{base_url}/metadata", timeout=10).json()
    assert statement["rest"][0]["operation"][0]["name"] == "export"

    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "_type", "valueString": ",".join(TYPES)},
            {"name": "_outputFormat", "valueString": "application/fhir+ndjson"},
            {"name": "_typeFilter", "valueString": "Observation?category=survey"},
        ],
    }
    kickoff = requests.post(
        f"{base_url}/Patient/$export",
        json=body,
        headers={**auth, "Prefer": "respond-async", "Content-Type": "application/fhir+json"},
        timeout=10,
    )
    assert kickoff.status_code == 202, kickoff.text
    status_url = kickoff.headers["Content-Location"]
    deadline = time.monotonic() + 60
    while (status := requests.get(status_url, headers=auth, timeout=10)).status_code == 202:
        assert status.headers["X-Progress"] and int(status.headers["Retry-After"]) > 0
        assert time.monotonic() < deadline, "the export did not finish in 60 s"
        time.sleep(0.2)
    assert status.status_code == 200
    manifest = status.json()
    assert manifest["request"] == f"{base_url}/Patient/$export"
    assert manifest["requiresAccessToken"] is True

    exported: dict[str, dict[str, Any]] = {}
    for item in manifest["output"]:
        file = requests.get(
            item["url"], headers={**auth, "Accept": "application/fhir+ndjson"}, timeout=30
        )
        assert file.status_code == 200 and file.headers["Content-Type"].startswith(
            "application/fhir+ndjson"
        )
        lines = [json.loads(line) for line in file.text.splitlines()]
        assert len(lines) == item["count"]
        exported |= {f"{r['resourceType']}/{r['id']}": r for r in lines}
    assert exported == direct_search(clinic.base_url)

    # Lenient (the default): the ignored _typeFilter is named in error[], as a warning.
    [note] = manifest["error"]
    outcome = requests.get(note["url"], headers=auth, timeout=10).json()
    assert outcome["issue"][0]["severity"] == "warning"
    assert outcome["issue"][0]["diagnostics"].startswith("_typeFilter:")

    assert requests.delete(status_url, headers=auth, timeout=10).status_code == 202
    assert requests.get(status_url, headers=auth, timeout=10).status_code == 404

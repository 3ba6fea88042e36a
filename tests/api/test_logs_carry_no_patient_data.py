"""Logs carry ids and counts, never values: a marker planted in every input never reaches a log.

The marker goes into notes, lot numbers, names, patient ids and identifiers, into valid and
invalid requests to every route, and into the message of an exception that becomes a 500.
Everything logged is captured: the log records (caplog, at DEBUG) and the process's own
stdout/stderr, where the JSON lines go.
"""

from __future__ import annotations

import http.server
import json
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

import mappings
from service.app import create_app
from service.config import Settings
from tests.api.samples import diary, infusion
from tests.conftest import headers, make_env

MARKER = "zq7Marker93"
MARKED_PATIENT = f"Patient/{MARKER}"
MARKED_IDENTIFIER = {"system": "https://clinic.example/mrn", "value": MARKER}


@pytest.fixture
def debug_app(tmp_path: Path) -> Iterator[Flask]:
    yield create_app(Settings.from_env(make_env(tmp_path, DIARYBRIDGE_LOG_LEVEL="DEBUG")))


@pytest.fixture
def plain_client(debug_app: Flask) -> FlaskClient:
    # A plain client: several requests here are ones the spec does not describe (on purpose).
    return debug_app.test_client()


def marked_diary(**changes: Any) -> dict[str, Any]:
    marked: dict[str, Any] = {
        "entry_id": f"e-{MARKER}",
        "patient": {"reference": MARKED_PATIENT},
        "note": f"note {MARKER}",
        "medications": [{"name": f"med {MARKER}", "dose": 1.0, "dose_unit": "mg"}],
    }
    return diary(**{**marked, **changes})


def marked_infusion(**changes: Any) -> dict[str, Any]:
    marked: dict[str, Any] = {
        "infusion_id": f"i-{MARKER}",
        "patient": {"identifier": MARKED_IDENTIFIER},
        "lot_number": f"LOT-{MARKER}",
        "note": f"note {MARKER}",
        "performer": {"display": f"nurse {MARKER}"},
    }
    return infusion(**{**marked, **changes})


def assert_marker_not_logged(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    out, err = capfd.readouterr()
    records = [
        json.dumps({k: str(v) for k, v in vars(record).items()}) for record in caplog.records
    ]
    assert caplog.records, "nothing was logged, so nothing was tested"
    for where, text in (("log records", "\n".join(records)), ("stdout", out), ("stderr", err)):
        assert MARKER not in text, f"the marker reached the {where}"


def batch(**extra: str) -> dict[str, str]:
    return {**headers("batch"), **extra}


def bundle_of(client: FlaskClient, path: str, record: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=record, headers=batch())
    assert response.status_code == 200, response.json
    bundle: dict[str, Any] = response.json
    return bundle


def test_successful_conversions_both_ways(
    plain_client: FlaskClient, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level("DEBUG")
    diary_bundle = bundle_of(plain_client, "/convert/diary-entries", marked_diary())
    infusion_bundle = bundle_of(
        plain_client, "/convert/infusions?fhirVersion=5.0", marked_infusion()
    )
    assert MARKER in json.dumps(diary_bundle) and MARKER in json.dumps(infusion_bundle)
    for bundle in (diary_bundle, infusion_bundle):
        back = plain_client.post("/convert/fhir", json=bundle, headers=batch())
        assert back.status_code == 200 and MARKER in back.get_data(as_text=True)
    ndjson = "\n".join(json.dumps(e["resource"]) for e in diary_bundle["entry"])
    back = plain_client.post(
        "/convert/fhir", data=ndjson, content_type="application/fhir+ndjson", headers=batch()
    )
    assert back.status_code == 200
    assert_marker_not_logged(caplog, capfd)


INVALID_REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    # (name, path, keyword arguments for client.post)
    ("schema errors", "/convert/diary-entries", {"json": marked_diary(fatigue=MARKER)}),
    ("unknown field", "/convert/infusions", {"json": {**marked_infusion(), MARKER: MARKER}}),
    (
        "bad patient id",
        "/convert/diary-entries",
        {"json": marked_diary(patient={"reference": f"Patient/{MARKER}/x y"})},
    ),
    (
        "malformed json",
        "/convert/diary-entries",
        {"data": f'{{"note": "{MARKER}"', "content_type": "application/json"},
    ),
    ("wrong media type", "/convert/infusions", {"data": MARKER, "content_type": "text/plain"}),
    (
        "bad query",
        f"/convert/infusions?fhirVersion={MARKER}&bundle={MARKER}",
        {"json": marked_infusion()},
    ),
    (
        "bad accept",
        "/convert/infusions",
        {
            "json": marked_infusion(),
            "headers": {"Accept": f"application/fhir+json; fhirVersion={MARKER}"},
        },
    ),
    ("not a bundle", "/convert/fhir", {"json": {"note": MARKER}}),
    (
        "foreign resource",
        "/convert/fhir",
        {
            "json": {
                "resourceType": "Observation",
                "id": MARKER,
                "subject": {"reference": MARKED_PATIENT},
                "valueString": MARKER,
            }
        },
    ),
    (
        "bad entry",
        "/convert/fhir",
        {"json": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": MARKER}]}},
    ),
    (
        "bad ndjson",
        "/convert/fhir",
        {
            "data": f'{{"resourceType": "Observation"}}\n{MARKER}\n',
            "content_type": "application/fhir+ndjson",
        },
    ),
    (
        "not utf-8",
        "/convert/fhir",
        {"data": MARKER.encode() + b"\xff\xfe", "content_type": "application/fhir+ndjson"},
    ),
    ("unknown path", f"/convert/{MARKER}", {"json": marked_diary()}),
]


@pytest.mark.parametrize(
    ("name", "path", "kwargs"), INVALID_REQUESTS, ids=[r[0] for r in INVALID_REQUESTS]
)
def test_invalid_requests(
    plain_client: FlaskClient,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    name: str,
    path: str,
    kwargs: dict[str, Any],
) -> None:
    caplog.set_level("DEBUG")
    kwargs = dict(kwargs)
    response = plain_client.post(path, headers={**batch(), **kwargs.pop("headers", {})}, **kwargs)
    assert 400 <= response.status_code < 500, name
    assert_marker_not_logged(caplog, capfd)


@pytest.mark.parametrize(
    "credentials",
    [
        {"X-API-Key": MARKER},
        {"Authorization": f"Bearer {MARKER}.{MARKER}.{MARKER}"},
        {"Authorization": f"Basic {MARKER}"},
    ],
)
def test_bad_credentials(
    plain_client: FlaskClient,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    credentials: dict[str, str],
) -> None:
    caplog.set_level("DEBUG")
    response = plain_client.post("/convert/diary-entries", json=marked_diary(), headers=credentials)
    assert response.status_code == 401
    assert_marker_not_logged(caplog, capfd)


def test_other_patients_data_refused(
    plain_client: FlaskClient, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level("DEBUG")
    response = plain_client.post(
        "/convert/diary-entries", json=marked_diary(), headers=headers("diary_app")
    )
    assert response.status_code == 403
    assert_marker_not_logged(caplog, capfd)


@pytest.mark.parametrize("path", ["/convert/diary-entries", "/convert/infusions", "/convert/fhir"])
def test_a_bug_whose_message_quotes_the_input(
    debug_app: Flask,
    plain_client: FlaskClient,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    path: str,
) -> None:
    body: Any
    if path == "/convert/fhir":
        body = bundle_of(plain_client, "/convert/diary-entries", marked_diary())
    else:
        body = marked_diary() if "diary" in path else marked_infusion()

    def broken(items: Any, *args: Any) -> Any:
        raise RuntimeError(f"mapping failed on {json.dumps(items, default=str)} {MARKER}")

    monkeypatch.setattr(mappings, "to_resources", broken)
    monkeypatch.setattr(mappings, "from_resources", broken)
    debug_app.config["PROPAGATE_EXCEPTIONS"] = False
    response = plain_client.post(path, json=body, headers=batch())
    assert response.status_code == 500
    assert MARKER not in response.get_data(as_text=True)
    assert_marker_not_logged(caplog, capfd)


def _every_route(app: Flask) -> Iterator[tuple[str, str]]:
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", MARKER, rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield method, path


def test_every_route_with_marked_inputs(
    debug_app: Flask,
    plain_client: FlaskClient,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Routes added later (sync, patients, exports) are covered too: ids, query and body marked."""
    caplog.set_level("DEBUG")
    bodies = [marked_diary(), [marked_infusion()], {"patient": MARKED_PATIENT, "note": MARKER}]
    routes = list(_every_route(debug_app))
    assert ("POST", "/convert/diary-entries") in routes
    for method, path in routes:
        for who in ("batch", "diary_app"):
            for body in bodies:
                plain_client.open(
                    f"{path}?patient={MARKED_PATIENT}&q={MARKER}",
                    method=method,
                    json=body if method not in ("GET", "DELETE") else None,
                    headers={**headers(who), "X-Patient": MARKER},
                )
    assert_marker_not_logged(caplog, capfd)


class _FhirFake(http.server.BaseHTTPRequestHandler):
    """A FHIR server over real HTTP (urllib3 logs its request lines only on a real socket)."""

    def do_GET(self) -> None:  # http.server's name
        if self.path.startswith("/metadata"):
            body: dict[str, Any] = {
                "resourceType": "CapabilityStatement",
                "status": "active",
                "kind": "instance",
                "fhirVersion": "4.0.1",
                "format": ["json"],
            }
        else:
            body = {"resourceType": "Bundle", "type": "searchset", "entry": []}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass  # the fake's own lines are not the app's logs


@pytest.fixture
def fhir_over_http() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FhirFake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_searches_at_debug_level_leave_ids_and_values_out_of_library_logs(
    tmp_path: Path,
    fhir_over_http: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """urllib3 logs each request line at DEBUG (subject=Patient/..., code=...): pinned quiet."""
    env = make_env(
        tmp_path, DIARYBRIDGE_LOG_LEVEL="DEBUG", DIARYBRIDGE_FHIR_BASE_URL=fhir_over_http
    )
    client = create_app(Settings.from_env(env)).test_client()
    caplog.set_level("DEBUG")
    for path in (
        f"/patients/{MARKER}/observations?code={MARKER}&date=ge2026-01-01",
        f"/patients/{MARKER}/diary-entries",
        f"/patients/{MARKER}/infusions?since=2026-01-01T00:00:00Z",
    ):
        response = client.get(path, headers=batch())
        assert response.status_code == 200, (path, response.get_json())
    assert any(r.name.startswith("diarybridge") for r in caplog.records)
    assert_marker_not_logged(caplog, capfd)


def test_library_request_loggers_stay_at_warning_whatever_our_level(debug_app: Flask) -> None:
    # gunicorn's access log and werkzeug's request lines quote raw paths and query strings.
    assert logging.getLogger().isEnabledFor(logging.DEBUG)
    for name in ("urllib3.connectionpool", "werkzeug", "gunicorn.access", "requests"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name

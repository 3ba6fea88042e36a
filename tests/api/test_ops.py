"""Operations: JSON log lines with a request id, /metrics, /readyz."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine
from werkzeug.test import TestResponse

from service import wiring
from service.api.ops import may_read_metrics
from service.app import create_app
from service.config import Settings
from service.observability import current_request_id, metrics
from service.observability.logs import JsonFormatter
from service.security import Principal, SecuritySettings
from service.store import AcceptItem, accept
from tests.api.contract import ContractClient
from tests.api.samples import DIARY_ENTRY, INFUSION
from tests.conftest import PATIENT, headers, make_env

ROOT = Path(__file__).resolve().parents[2]


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every non-blank line must be one JSON object."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def contract_app(tmp_path: Path, **env: str) -> FlaskClient:
    app = create_app(Settings.from_env(make_env(tmp_path, **env)))
    app.test_client_class = ContractClient
    return app.test_client()


def sample_value(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text, or None if it is absent."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    return None


# ---- logs and request ids ----------------------------------------------------------------


def test_every_log_line_is_json_with_the_request_id(
    client: FlaskClient, capsys: pytest.CaptureFixture[str]
) -> None:
    response = client.post(
        "/convert/diary-entries",
        json=DIARY_ENTRY,
        headers={**headers("diary_app"), "X-Request-ID": "trace-abc.123"},
    )
    assert response.status_code == HTTPStatus.OK
    assert response.headers["X-Request-ID"] == "trace-abc.123"
    lines = json_lines(capsys.readouterr().err)
    assert lines, "nothing was logged"
    for line in lines:
        assert {"time", "level", "logger", "message", "request_id"} <= set(line)
    assert {line["request_id"] for line in lines} == {"trace-abc.123"}


def test_access_line_names_the_route_rule_status_duration_and_client(
    client: FlaskClient, capsys: pytest.CaptureFixture[str]
) -> None:
    client.post("/convert/infusions", json=INFUSION, headers=headers("diary_app"))
    access = [
        line
        for line in json_lines(capsys.readouterr().err)
        if line["logger"] == "diarybridge.access"
    ]
    assert len(access) == 1
    line = access[0]
    assert line["method"] == "POST" and line["route"] == "/convert/infusions"
    assert line["status"] == HTTPStatus.OK and line["client_id"] == "mg-diary-app"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0


def test_unmatched_path_is_logged_without_the_path(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    # A plain client: the spec has no path to check an unknown one against.
    response = app.test_client().get("/patients-typo/synthetic-mg-001", headers=headers("batch"))
    assert response.status_code == HTTPStatus.NOT_FOUND
    err = capsys.readouterr().err
    assert "synthetic-mg-001" not in err
    assert [line["route"] for line in json_lines(err) if "route" in line] == ["<unmatched>"]


@pytest.mark.parametrize(
    "offered",
    ["", "has space", "x" * 65, "semi;colon", "<script>", "-starts-with-dash", "ünicode"],
)
def test_an_unsafe_request_id_is_replaced_by_a_uuid(client: FlaskClient, offered: str) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": offered})
    echoed = response.headers["X-Request-ID"]
    assert echoed != offered
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", echoed)


def test_each_request_gets_its_own_id_and_none_is_left_behind(client: FlaskClient) -> None:
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert first != second
    assert current_request_id() is None


def test_current_request_id_is_visible_to_other_layers(app: Flask) -> None:
    seen: list[str | None] = []

    @app.get("/_probe")
    def _probe() -> dict[str, str]:
        seen.append(current_request_id())
        return {}

    app.test_client().get("/_probe", headers={**headers("batch"), "X-Request-ID": "probe-1"})
    assert seen == ["probe-1"]


def test_text_format_is_available(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    client = contract_app(tmp_path, DIARYBRIDGE_LOG_FORMAT="text")
    client.get("/healthz", headers={"X-Request-ID": "text-1"})
    err = capsys.readouterr().err
    assert "[text-1] GET /healthz 200" in err
    assert not err.lstrip().startswith("{")


def test_exception_text_is_left_out_of_json_lines() -> None:
    secret = "secret-value-in-message"
    try:
        raise ValueError(secret)
    except ValueError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 1, "failed", (), exc_info=__import__("sys").exc_info()
        )
    line = json.loads(JsonFormatter().format(record))
    assert line["exc_type"] == "ValueError" and "raise ValueError" in line["stack"]
    assert "secret-value-in-message" not in json.dumps(line)


# ---- /metrics -----------------------------------------------------------------------------


def test_metrics_need_a_system_read_scope(client: FlaskClient) -> None:
    assert client.get("/metrics").status_code == HTTPStatus.UNAUTHORIZED
    assert client.get("/metrics", headers=headers("diary_app")).status_code == HTTPStatus.FORBIDDEN
    assert client.get("/metrics", headers=headers("clinician")).status_code == HTTPStatus.FORBIDDEN
    assert client.get("/metrics", headers=headers("batch")).status_code == HTTPStatus.OK


def test_metrics_can_be_made_public(tmp_path: Path) -> None:
    client = contract_app(tmp_path, DIARYBRIDGE_METRICS_PUBLIC="true")
    assert client.get("/metrics").status_code == HTTPStatus.OK


def test_metrics_count_requests_by_route_rule_and_records_by_kind(client: FlaskClient) -> None:
    client.post("/convert/diary-entries", json=[DIARY_ENTRY], headers=headers("diary_app"))
    client.post("/convert/infusions", json=INFUSION, headers=headers("diary_app"))
    client.post("/convert/infusions", json={}, headers=headers("batch"))
    text = client.get("/metrics", headers=headers("batch")).get_data(as_text=True)
    requests_total = "diarybridge_http_requests_total"
    assert (
        sample_value(text, requests_total, route="/convert/infusions", method="POST", status="200")
        == 1
    )
    assert (
        sample_value(text, requests_total, route="/convert/infusions", method="POST", status="422")
        == 1
    )
    assert (
        sample_value(
            text,
            "diarybridge_http_request_duration_seconds_count",
            route="/convert/diary-entries",
            method="POST",
        )
        == 1
    )
    assert sample_value(text, "diarybridge_records_converted_total", kind="diary-entry") == 1
    assert sample_value(text, "diarybridge_records_converted_total", kind="infusion") == 1


def test_two_apps_keep_their_own_counts(tmp_path: Path) -> None:
    one = contract_app(tmp_path / "one", DIARYBRIDGE_METRICS_PUBLIC="true")
    two = contract_app(tmp_path / "two", DIARYBRIDGE_METRICS_PUBLIC="true")
    one.get("/healthz")
    one.get("/healthz")
    two.get("/healthz")
    count = "diarybridge_http_requests_total"
    labels = {"route": "/healthz", "method": "GET", "status": "200"}
    assert sample_value(one.get("/metrics").get_data(as_text=True), count, **labels) == 2
    assert sample_value(two.get("/metrics").get_data(as_text=True), count, **labels) == 1


def test_push_metrics_count_outside_a_request(tmp_path: Path) -> None:
    client = contract_app(tmp_path, DIARYBRIDGE_METRICS_PUBLIC="true")
    metrics.pushed("sent", 3)  # as a sync worker thread would, with no app context
    metrics.pushed("conflict", 1)
    metrics.push_seconds(0.2)
    text = client.get("/metrics").get_data(as_text=True)
    assert sample_value(text, "diarybridge_push_records_total", outcome="sent") == 3
    assert sample_value(text, "diarybridge_push_records_total", outcome="conflict") == 1
    assert sample_value(text, "diarybridge_push_duration_seconds_count") == 1


def test_outbox_gauges_are_read_from_the_store_at_scrape(app: Flask) -> None:
    app.test_client_class = ContractClient
    client = app.test_client()
    with wiring.of(app).sessions.begin() as session:
        accept(
            session,
            "mg-diary-app",
            [
                AcceptItem(
                    namespace="mg-diary-app",
                    kind="diary-entry",
                    source_id=f"e{i}",
                    patient_key=PATIENT,
                    record=DIARY_ENTRY,
                )
                for i in range(2)
            ],
        )
    text = client.get("/metrics", headers=headers("batch")).get_data(as_text=True)
    assert sample_value(text, "diarybridge_outbox_up") == 1
    assert sample_value(text, "diarybridge_outbox_entries", status="queued") == 2
    assert sample_value(text, "diarybridge_outbox_entries", status="sent") == 0
    age = sample_value(text, "diarybridge_outbox_oldest_queued_age_seconds")
    assert age is not None and age >= 0


def test_metrics_scrape_survives_a_database_outage(app: Flask) -> None:
    app.test_client_class = ContractClient
    wiring.of(app).sessions.configure(bind=create_engine("sqlite:////nonexistent/x.db"))
    response = app.test_client().get("/metrics", headers=headers("batch"))
    assert response.status_code == HTTPStatus.OK
    assert sample_value(response.get_data(as_text=True), "diarybridge_outbox_up") == 0


def test_metrics_speak_openmetrics_when_asked(client: FlaskClient) -> None:
    response = client.get(
        "/metrics", headers={**headers("batch"), "Accept": "application/openmetrics-text"}
    )
    assert response.mimetype == "application/openmetrics-text"
    assert response.get_data(as_text=True).rstrip().endswith("# EOF")


# ---- /readyz ------------------------------------------------------------------------------


class _MetadataHandler(BaseHTTPRequestHandler):
    status = HTTPStatus.OK

    def do_GET(self) -> None:  # http.server's name
        ok = self.path == "/fhir/metadata"
        self.send_response(self.status if ok else HTTPStatus.NOT_FOUND)
        self.send_header("Content-Type", "application/fhir+json")
        self.end_headers()
        self.wfile.write(b'{"resourceType": "CapabilityStatement"}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def metadata_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MetadataHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_ready_without_a_fhir_server_configured(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == HTTPStatus.OK
    assert response.json == {
        "status": "ready",
        "checks": {"database": "ok", "fhir_server": "not_configured"},
    }


def settled_readiness(client: FlaskClient) -> TestResponse:
    """/readyz once the background probe of the FHIR server has reported (bounded wait)."""
    deadline = time.monotonic() + 10
    while True:
        response = client.get("/readyz")
        if response.json["checks"]["fhir_server"] != "unknown" or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def test_ready_when_the_fhir_server_answers(
    tmp_path: Path, metadata_server: ThreadingHTTPServer
) -> None:
    base = f"http://127.0.0.1:{metadata_server.server_address[1]}/fhir"
    response = settled_readiness(contract_app(tmp_path, DIARYBRIDGE_FHIR_BASE_URL=base))
    assert response.status_code == HTTPStatus.OK
    assert response.json["checks"] == {"database": "ok", "fhir_server": "ok"}


def test_a_failing_or_absent_fhir_server_is_reported_but_keeps_the_instance_ready(
    tmp_path: Path, metadata_server: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_MetadataHandler, "status", HTTPStatus.SERVICE_UNAVAILABLE)
    base = f"http://127.0.0.1:{metadata_server.server_address[1]}/fhir"
    failing = settled_readiness(contract_app(tmp_path / "a", DIARYBRIDGE_FHIR_BASE_URL=base))
    away = settled_readiness(
        contract_app(tmp_path / "b", DIARYBRIDGE_FHIR_BASE_URL="http://127.0.0.1:9/fhir")
    )
    for response in (failing, away):
        # The outbox still accepts: a FHIR outage must not take every instance out of rotation.
        assert response.status_code == HTTPStatus.OK
        assert response.json == {
            "status": "ready",
            "checks": {"database": "ok", "fhir_server": "failed"},
        }


def test_not_ready_when_the_database_does_not_answer(app: Flask) -> None:
    app.test_client_class = ContractClient
    wiring.of(app).engine = create_engine("sqlite:////nonexistent/x.db")
    response = app.test_client().get("/readyz")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json["checks"]["database"] == "failed"


def test_the_compose_example_configures_a_valid_service() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.example.yml").read_text(encoding="utf-8"))
    env = {k: str(v) for k, v in compose["services"]["diarybridge"]["environment"].items()}
    settings = Settings.from_env(env)
    assert settings.fhir.base_url == "http://hapi:8080/fhir"
    assert settings.log_format == "json" and settings.metrics_public is False
    grants = SecuritySettings.from_mapping(settings.security_env).api_keys
    monitoring = [g for g in grants.values() if g.client_id == "monitoring"]
    assert len(monitoring) == 1
    assert may_read_metrics(Principal(monitoring[0].client_id, monitoring[0].scopes))

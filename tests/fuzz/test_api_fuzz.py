"""Schemathesis against openapi.yaml and the WSGI app: no 500s, and every answer as documented.

Bounded (max_examples per operation) and derandomized, so the run is short and the same on
every machine; a finding is reproducible from the printed case.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.app import create_app
from service.config import Settings
from tests.conftest import headers, make_env
from tests.fuzz.strategies import EDGE_TIMES

SPEC = Path(__file__).resolve().parents[2] / "openapi.yaml"
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]
MAX_EXAMPLES = 30
CREDENTIAL_HEADERS = {"authorization", "x-api-key"}

# Date-times: RFC 3339 ones in and around the accepted range, and as often ones at the edge of
# the calendar (an offset that pushes them past year 9999 in UTC): a 422, never a 500.
schemathesis.openapi.format(
    "date-time",
    EDGE_TIMES
    | st.datetimes(
        min_value=datetime(1890, 1, 1), max_value=datetime(2110, 1, 1), timezones=st.just(UTC)
    ).map(datetime.isoformat),
)

# Every phase (examples, coverage of the schema's boundaries, random fuzzing) for a system-level
# caller, who gets past authorization into validation and conversion.
schema = schemathesis.openapi.from_path(SPEC)
# A patient-bound app is refused most of that at the patient check: no coverage phase (its
# ~900 cases per operation would mostly repeat 403s), examples and fuzzing only.
patient_app_schema = schemathesis.openapi.from_path(
    SPEC, config=schemathesis.Config.from_dict({"phases": {"coverage": {"enabled": False}}})
)
BOUNDED = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@schemathesis.serializer("application/fhir+ndjson", "application/x-ndjson")
def _ndjson(_ctx: Any, value: Any) -> bytes:
    # The spec's NDJSON body is a string; lone surrogates pass through as invalid UTF-8 on purpose.
    text = value if isinstance(value, str) else json.dumps(value)
    return text.encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory, fhir_server: str) -> Flask:
    # The real test FHIR server behind it, as in a deployment: pushes and pulls really happen,
    # and a 5xx is always a finding. WARNING level: thousands of access lines only slow it down.
    env = make_env(
        tmp_path_factory.mktemp("fuzz"),
        DIARYBRIDGE_LOG_LEVEL="WARNING",
        DIARYBRIDGE_FHIR_BASE_URL=fhir_server,
    )
    return create_app(Settings.from_env(env))


def call_as(who: str, case: schemathesis.Case, app: Flask) -> None:
    """Send the case with one synthetic user's key and run every check on the answer."""
    # Coverage cases add a generated `Authorization` next to our key; the app rightly refuses two
    # credentials, so drop generated credentials and send only the synthetic user's key.
    case.headers = {
        name: value
        for name, value in (case.headers or {}).items()
        if name.lower() not in CREDENTIAL_HEADERS
    }
    case.call_and_validate(app=app, headers=headers(who), checks=CHECKS)


@schema.parametrize()
@BOUNDED
def test_api_conforms_to_its_spec(case: schemathesis.Case, fuzz_app: Flask) -> None:
    call_as("batch", case, fuzz_app)


@patient_app_schema.parametrize()
@BOUNDED
def test_api_conforms_to_its_spec_for_a_patient_app(
    case: schemathesis.Case, fuzz_app: Flask
) -> None:
    call_as("diary_app", case, fuzz_app)


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def chunked(app: WsgiApp) -> WsgiApp:
    """The app behind a server that got every body with Transfer-Encoding: chunked."""

    def framed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.pop("CONTENT_LENGTH", "") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        environ["wsgi.input_terminated"] = True  # as gunicorn sets it for a chunked request
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        return app(environ, start_response)

    return framed


@pytest.fixture(scope="module")
def chunked_app(tmp_path_factory: pytest.TempPathFactory) -> WsgiApp:
    # No FHIR server: bodies are what is fuzzed here (a push is queued for a worker).
    env = make_env(
        tmp_path_factory.mktemp("fuzz-chunked"),
        DIARYBRIDGE_LOG_LEVEL="WARNING",
        DIARYBRIDGE_WORKER_IN_PROCESS="false",
        DIARYBRIDGE_MAX_BODY_BYTES="8192",  # small: generated bodies cross it often
    )
    return chunked(create_app(Settings.from_env(env)))


@patient_app_schema.include(method="POST").parametrize()
@BOUNDED
def test_bodies_sent_chunked_conform_too(case: schemathesis.Case, chunked_app: WsgiApp) -> None:
    call_as("batch", case, chunked_app)  # type: ignore[arg-type]

"""GET /healthz and /readyz: the process is up; it can serve. No credentials needed."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Blueprint, current_app

from service.observability.readiness import FAILED, FhirProbe, check_readiness
from service.sync.runtime import SyncRuntime

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[dict[str, str], HTTPStatus]:
    """Liveness: answers as long as the process serves requests."""
    return {"status": "ok"}, HTTPStatus.OK


@bp.get("/readyz")
def readyz() -> tuple[dict[str, Any], HTTPStatus]:
    """Readiness: the database answers, else 503; the FHIR server's last known state is shown."""
    settings = current_app.config["SETTINGS"]
    probe: FhirProbe = current_app.extensions.setdefault(
        "diarybridge.fhir_probe", FhirProbe(settings.fhir, settings.readiness_timeout)
    )
    runtime: SyncRuntime = current_app.extensions["diarybridge.sync"]
    # An open circuit is fresher news than the last probe, and costs no call.
    fhir_state = FAILED if runtime.circuit_open() else probe.state()
    readiness = check_readiness(
        current_app.extensions["diarybridge.engine"],
        fhir_state,
        current_app.extensions.get("diarybridge.schema"),
    )
    if readiness.ready:
        return {"status": "ready", "checks": readiness.checks}, HTTPStatus.OK
    return {"status": "not_ready", "checks": readiness.checks}, HTTPStatus.SERVICE_UNAVAILABLE

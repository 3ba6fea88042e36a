"""GET /healthz and /readyz: the process is up; it can serve. No credentials needed."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Blueprint

from service import wiring
from service.observability.readiness import FAILED, check_readiness

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[dict[str, str], HTTPStatus]:
    """Liveness: answers as long as the process serves requests."""
    return {"status": "ok"}, HTTPStatus.OK


@bp.get("/readyz")
def readyz() -> tuple[dict[str, Any], HTTPStatus]:
    """Readiness: the database answers, else 503; the FHIR server's last known state is shown."""
    app = wiring.current()
    # An open circuit is fresher news than the last probe, and costs no call.
    fhir_state = FAILED if app.sync.circuit_open() else app.fhir_probe.state()
    readiness = check_readiness(app.engine, fhir_state, app.schema)
    if readiness.ready:
        return {"status": "ready", "checks": readiness.checks}, HTTPStatus.OK
    return {"status": "not_ready", "checks": readiness.checks}, HTTPStatus.SERVICE_UNAVAILABLE

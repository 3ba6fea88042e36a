"""GET /healthz and /readyz: the process is up; it can serve. No credentials needed."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from flask import Blueprint, current_app

from service.observability.readiness import check_readiness

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[dict[str, str], HTTPStatus]:
    """Liveness: answers as long as the process serves requests."""
    return {"status": "ok"}, HTTPStatus.OK


@bp.get("/readyz")
def readyz() -> tuple[dict[str, Any], HTTPStatus]:
    """Readiness: the database answers and the FHIR server (when configured) answers; else 503."""
    settings = current_app.config["SETTINGS"]
    readiness = check_readiness(
        current_app.extensions["diarybridge.engine"], settings.fhir, settings.readiness_timeout
    )
    if readiness.ready:
        return {"status": "ready", "checks": readiness.checks}, HTTPStatus.OK
    return {"status": "not_ready", "checks": readiness.checks}, HTTPStatus.SERVICE_UNAVAILABLE

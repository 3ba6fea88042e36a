"""GET /healthz: the process is up. No credentials needed."""

from __future__ import annotations

from http import HTTPStatus

from flask import Blueprint

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[dict[str, str], HTTPStatus]:
    """Liveness: answers as long as the process serves requests."""
    return {"status": "ok"}, HTTPStatus.OK

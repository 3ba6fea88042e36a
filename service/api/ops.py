"""GET /metrics: Prometheus text; no patient data, yet not public unless configured so."""

from __future__ import annotations

from http import HTTPStatus

from flask import Blueprint, Response, g, request
from prometheus_client.exposition import choose_encoder

from service import wiring
from service.api.auth import API_KEY_HEADER
from service.observability.metrics import scrape_registry
from service.security import Forbidden, Principal

bp = Blueprint("ops", __name__)

METRICS_SCOPE = "system/*.read"


def may_read_metrics(caller: Principal) -> bool:
    """Only a system-level reader of every type (a monitoring job), never a patient's app."""
    return caller.patient is None and any(
        scope.context == "system" and scope.resource_type == "*" and scope.read
        for scope in caller.scopes
    )


def _require_metrics_reader() -> None:
    # The authentication hook skips this endpoint so that it can be made public by settings.
    if wiring.current().settings.metrics_public:
        return
    g.principal = wiring.current().authenticator.authenticate(
        request.headers.get("Authorization"), request.headers.get(API_KEY_HEADER)
    )
    if not may_read_metrics(g.principal):
        raise Forbidden("reading metrics needs a system-level read scope", METRICS_SCOPE)


@bp.get("/metrics")
def metrics() -> Response:
    """The instance's metrics (all its gunicorn workers' in multiprocess mode), in the format the
    scraper asks for (Prometheus or OpenMetrics)."""
    _require_metrics_reader()
    app = wiring.current()
    registry = scrape_registry(app.metrics, app.settings.metrics_multiproc_dir)
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encoder(registry), status=HTTPStatus.OK, content_type=content_type)

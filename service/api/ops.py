"""GET /metrics: Prometheus text; no patient data, yet not public unless configured so."""

from __future__ import annotations

from http import HTTPStatus

from flask import Blueprint, Response, current_app, g, request
from prometheus_client.exposition import choose_encoder

from service.api.auth import API_KEY_HEADER
from service.observability.metrics import EXTENSION_KEY, Metrics, scrape_registry
from service.security import Authenticator, Forbidden, Principal

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
    if current_app.config["SETTINGS"].metrics_public:
        return
    auth: Authenticator = current_app.extensions["diarybridge.authenticator"]
    g.principal = auth.authenticate(
        request.headers.get("Authorization"), request.headers.get(API_KEY_HEADER)
    )
    if not may_read_metrics(g.principal):
        raise Forbidden("reading metrics needs a system-level read scope", METRICS_SCOPE)


@bp.get("/metrics")
def metrics() -> Response:
    """The instance's metrics (all its gunicorn workers' in multiprocess mode), in the format the
    scraper asks for (Prometheus or OpenMetrics)."""
    _require_metrics_reader()
    metrics = current_app.extensions[EXTENSION_KEY]
    assert isinstance(metrics, Metrics)
    registry = scrape_registry(metrics, current_app.config["SETTINGS"].metrics_multiproc_dir)
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encoder(registry), status=HTTPStatus.OK, content_type=content_type)

"""Per-request hooks: a request id in and out, one access log line, request metrics."""

from __future__ import annotations

import contextlib
import logging
import time
from contextvars import Token

from flask import Flask, Response, g, request

from service.observability.metrics import Metrics, serve_with, stop_serving
from service.observability.request_id import (
    bind_request_id,
    choose_request_id,
    reset_request_id,
)

REQUEST_ID_HEADER = "X-Request-ID"
UNMATCHED_ROUTE = "<unmatched>"

access_log = logging.getLogger("diarybridge.access")


def route_of_request() -> str:
    """The matched route rule ("/patients/<patient_id>"), never the raw path with its ids."""
    rule = request.url_rule
    return rule.rule if rule is not None else UNMATCHED_ROUTE


def install_request_hooks(app: Flask, metrics: Metrics) -> None:
    """Register the hooks; call before any other before_request hook so they see the id."""

    @app.before_request
    def _start() -> None:
        request_id = choose_request_id(request.headers.get(REQUEST_ID_HEADER))
        g.request_id = request_id
        g._request_id_token = bind_request_id(request_id)
        g._metrics_token = serve_with(metrics)  # what the layers below count goes to this app
        g._request_started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        started = g.get("_request_started")
        seconds = time.perf_counter() - started if started is not None else 0.0
        route = route_of_request()
        metrics.requests.labels(route, request.method, str(response.status_code)).inc()
        metrics.request_seconds.labels(route, request.method).observe(seconds)
        principal = g.get("principal")
        access_log.info(
            "%s %s %d",
            request.method,
            route,
            response.status_code,
            extra={
                "method": request.method,
                "route": route,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 2),
                "client_id": principal.client_id if principal is not None else None,
            },
        )
        if "request_id" in g:
            response.headers[REQUEST_ID_HEADER] = g.request_id
        return response

    @app.teardown_request
    def _reset(_exc: BaseException | None) -> None:
        counting: Token[Metrics | None] | None = g.pop("_metrics_token", None)
        if counting is not None:
            with contextlib.suppress(ValueError):
                stop_serving(counting)
        token: Token[str | None] | None = g.pop("_request_id_token", None)
        if token is not None:
            # ValueError: torn down in another context (a test client's kept context)
            with contextlib.suppress(ValueError):
                reset_request_id(token)

"""The authentication hook: every request but the public ones carries credentials."""

from __future__ import annotations

from http import HTTPStatus

from flask import Flask, Response, g, request

from service import wiring
from service.api.errors import error_response
from service.security import Forbidden, KeysUnavailable, Unauthenticated

# ops.metrics checks credentials itself: it is public when DIARYBRIDGE_METRICS_PUBLIC is true.
# Discovery (metadata.*) is public: clients read it to learn how to get credentials.
PUBLIC_ENDPOINTS = {
    "health.healthz",
    "health.readyz",
    "ops.metrics",
    "metadata.capability",
    "metadata.smart",
    "metadata.local_code_system",  # definitions of our local codes: no patient data
    "questionnaires.questionnaire",  # a definition, no patient data
    "static",
}
API_KEY_HEADER = "X-API-Key"


def install(app: Flask) -> None:
    """Authenticate before each protected view (the wiring's authenticator); render 401/403."""

    @app.before_request
    def _authenticate() -> None:
        if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
            return
        g.principal = wiring.current().authenticator.authenticate(
            request.headers.get("Authorization"), request.headers.get(API_KEY_HEADER)
        )

    @app.errorhandler(Unauthenticated)
    def _unauthenticated(exc: Unauthenticated) -> Response:
        response = error_response(HTTPStatus.UNAUTHORIZED, "unauthenticated", str(exc))
        response.headers["WWW-Authenticate"] = exc.www_authenticate
        return response

    @app.errorhandler(Forbidden)
    def _forbidden(exc: Forbidden) -> Response:
        return error_response(HTTPStatus.FORBIDDEN, "forbidden", str(exc))

    @app.errorhandler(KeysUnavailable)
    def _keys_unavailable(exc: KeysUnavailable) -> Response:
        # The issuer's JWKS cannot be fetched: our problem, not the caller's credentials.
        return error_response(
            HTTPStatus.SERVICE_UNAVAILABLE, "keys_unavailable", "token keys cannot be loaded now"
        )

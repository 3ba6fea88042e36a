"""GET /metadata and /.well-known/smart-configuration: discovery, so needs no credentials."""

from __future__ import annotations

import json
from http import HTTPStatus

from flask import Blueprint, Response, current_app, request

from service.api.errors import ApiError
from service.config import Settings
from service.discovery import Discovery, capability_statement, smart_configuration
from service.negotiation import fhir_version
from service.security import SecuritySettings

bp = Blueprint("metadata", __name__)


def _discovery() -> Discovery:
    settings: Settings = current_app.config["SETTINGS"]
    security = SecuritySettings.from_mapping(settings.security_env)
    return Discovery(
        base_url=request.url_root.rstrip("/"),
        token_url=settings.smart_token_url,
        issuer=security.issuer or "",
        jwks_url=security.jwks_url or "",
        export_group=settings.export_group,
    )


@bp.get("/metadata")
def capability() -> Response:
    """Our CapabilityStatement: R4 (4.0.1), or R5 with ?fhirVersion=5.0 / Accept fhirVersion."""
    version = fhir_version(request.args.get("fhirVersion"), request.accept_mimetypes)
    body = capability_statement(_discovery(), version)
    return Response(json.dumps(body), mimetype="application/fhir+json")


@bp.get("/.well-known/smart-configuration")
def smart() -> Response:
    """Where backend-services clients get tokens we accept (from configuration)."""
    body = smart_configuration(_discovery())
    if body is None:
        raise ApiError(
            HTTPStatus.NOT_FOUND, "not_configured", "no authorization server is configured"
        )
    return Response(json.dumps(body), mimetype="application/json")

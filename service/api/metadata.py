"""GET /metadata, /.well-known/smart-configuration and /CodeSystem/{id}: discovery and the
definitions of our local codes, public (no patient data) so anyone can learn what they mean."""

from __future__ import annotations

import json
from http import HTTPStatus

from flask import Blueprint, Response, request

from mappings.terminology import code_system
from service import wiring
from service.api.errors import ApiError
from service.config import Settings
from service.discovery import Discovery, capability_statement, smart_configuration
from service.negotiation import fhir_version
from service.security import SecuritySettings

bp = Blueprint("metadata", __name__)


def _discovery() -> Discovery:
    settings: Settings = wiring.current().settings
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


@bp.get("/CodeSystem/<cs_id>")
def local_code_system(cs_id: str) -> Response:
    """One of our local CodeSystems (read-only FHIR read), e.g. /CodeSystem/mg-diary."""
    settings: Settings = wiring.current().settings
    body = code_system(cs_id, settings.canonical_base)
    if body is None:
        raise ApiError(HTTPStatus.NOT_FOUND, "not_found", "no such CodeSystem")
    return Response(json.dumps(body), mimetype="application/fhir+json")

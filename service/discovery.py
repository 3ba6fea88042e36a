"""What standard clients discover: our CapabilityStatement and SMART configuration.

Both tell the truth about a bridge, not a FHIR server: no resource interactions, only the Bulk
Data `export` operations it routes, and the authorization server whose tokens it accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from mappings.context import FhirVersion
from service.exports.kickoff import OUTPUT_FORMATS
from service.exports.request import EXPORTABLE_TYPES

BULK_DATA = "http://hl7.org/fhir/uv/bulkdata"
# The Bulk Data IG's OperationDefinitions for each level (export.html#operation-definitions).
EXPORT_OPERATIONS = {
    "system": f"{BULK_DATA}/OperationDefinition/export",
    "Patient": f"{BULK_DATA}/OperationDefinition/patient-export",
    "Group": f"{BULK_DATA}/OperationDefinition/group-export",
}
STATEMENT_DATE = "2026-12-01"  # when this statement last changed (bump with its content)
FHIR_RELEASES = {FhirVersion.R4: "4.0.1", FhirVersion.R5: "5.0.0"}
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
# The scopes our security layer understands for exports (service/security/scopes.py).
READ_SCOPES = (
    "system/*.read",
    *(f"system/{t}.read" for t in EXPORTABLE_TYPES),
    "user/*.read",
    *(f"user/{t}.read" for t in EXPORTABLE_TYPES),
    "patient/*.read",
    *(f"patient/{t}.read" for t in EXPORTABLE_TYPES),
)


@dataclass(frozen=True)
class Discovery:
    """What discovery needs to know: our base URL and the trusted authorization server."""

    base_url: str
    token_url: str = ""
    issuer: str = ""
    jwks_url: str = ""
    export_group: str = ""  # the Group id Group/[id]/$export answers, if any


def _software_version() -> str:
    try:
        return version("diarybridge")
    except PackageNotFoundError:  # run from a source tree without an install
        return "0.0.0"


def capability_statement(found: Discovery, fhir_version: FhirVersion) -> dict[str, Any]:
    """A CapabilityStatement (kind instance) declaring the export operations we route."""
    operation = [{"name": "export", "definition": EXPORT_OPERATIONS["system"]}]
    resources: list[dict[str, Any]] = [
        {
            "type": "Patient",
            "operation": [{"name": "export", "definition": EXPORT_OPERATIONS["Patient"]}],
        }
    ]
    if found.export_group:
        resources.append(
            {
                "type": "Group",
                "operation": [{"name": "export", "definition": EXPORT_OPERATIONS["Group"]}],
            }
        )
    # The types an export contains; named without interactions since none is served on them.
    resources += [{"type": t} for t in EXPORTABLE_TYPES]
    security: dict[str, Any] = {
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ]
            }
        ],
        "description": (
            "SMART Backend Services: a bearer JWT from the authorization server in "
            "/.well-known/smart-configuration, with system/*.read (or per-type) scopes; "
            "API keys (X-API-Key) also work. A credential bound to one patient exports "
            "that patient only."
        ),
    }
    if found.token_url:
        security["extension"] = [
            {
                "url": OAUTH_URIS,
                "extension": [{"url": "token", "valueUri": found.token_url}],
            }
        ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": STATEMENT_DATE,
        "publisher": "DiaryBridge",
        "kind": "instance",
        "instantiates": [f"{BULK_DATA}/CapabilityStatement/bulk-data"],
        "software": {"name": "DiaryBridge", "version": _software_version()},
        "implementation": {
            "description": (
                "DiaryBridge, a bridge for myasthenia gravis patient diaries: not a FHIR "
                "server. It serves Bulk Data $export of the clinic server's Observations and "
                "MedicationAdministrations, and no other FHIR interaction."
            ),
            "url": found.base_url,
        },
        "fhirVersion": FHIR_RELEASES[fhir_version],
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Export formats (_outputFormat): " + ", ".join(OUTPUT_FORMATS) + "."
                ),
                "security": security,
                "resource": resources,
                "operation": operation,
            }
        ],
    }


def smart_configuration(found: Discovery) -> dict[str, Any] | None:
    """SMART's well-known configuration for backend services; None without a token URL."""
    if not found.token_url:
        return None
    config: dict[str, Any] = {
        "token_endpoint": found.token_url,
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": list(READ_SCOPES),
        "capabilities": ["client-confidential-asymmetric"],
    }
    if found.issuer:
        config["issuer"] = found.issuer
    if found.jwks_url:
        config["jwks_uri"] = found.jwks_url
    return config

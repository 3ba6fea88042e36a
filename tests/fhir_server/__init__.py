"""A real FHIR R4 server for the integration tests: Medplum's router behind server.mjs."""

from tests.fhir_server.launcher import (
    FhirServerError,
    RunningServer,
    ensure_npm_dependencies,
    free_port,
    start_fhir_server,
)

__all__ = [
    "FhirServerError",
    "RunningServer",
    "ensure_npm_dependencies",
    "free_port",
    "start_fhir_server",
]

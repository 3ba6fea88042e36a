"""A real FHIR R4 server for the integration tests: Medplum's router behind server.mjs."""

from tests.fhir_server.launcher import (
    FhirServerError,
    RunningServer,
    ensure_npm_dependencies,
    free_port,
    start_fhir_server,
)
from tests.fhir_server.queries import CountByIdentifier, count_by_identifier

__all__ = [
    "CountByIdentifier",
    "FhirServerError",
    "RunningServer",
    "count_by_identifier",
    "ensure_npm_dependencies",
    "free_port",
    "start_fhir_server",
]

"""FHIR REST client: speaks FHIR over HTTP and knows nothing of Flask or our mappings.

with build_client(FhirClientConfig(base_url="https://fhir.example/r4")) as fhir:
    caps = fhir.capabilities()                      # /metadata, read once
    strategy = choose_push_strategy(caps, ["Observation"])
    fhir.update(resource)                           # PUT Type/id (update-as-create)
    status_url = kick_off(fhir, types=["Observation"])  # Bulk Data $export, see bulk.py
    for obs in fhir.search("Observation", {"subject": "Patient/1"}, limit=100):
        ...                                         # pages fetched lazily via link[next]
"""

from .auth import BasicAuth, BearerTokenAuth, RefreshableAuth, SmartBackendAuth
from .breaker import BreakerState, CircuitBreaker
from .bulk import (
    BulkExportCancelled,
    BulkExportRefused,
    BulkExportTimeout,
    BulkManifest,
    BulkOutput,
    BulkStatus,
    check_status,
    delete_job,
    download,
    ignored_parameter_issues,
    kick_off,
    parse_manifest,
    wait_for_manifest,
)
from .capabilities import (
    PushStrategy,
    ResourceCapability,
    ServerCapabilities,
    choose_push_strategy,
    parse_capability_statement,
    release_for_version,
)
from .client import FhirClient, bundle_is_idempotent, time_budget
from .config import AuthConfig, FhirClientConfig, build_auth, build_client
from .errors import (
    AuthenticationError,
    BadRequest,
    BudgetExhausted,
    CircuitOpen,
    Conflict,
    FhirClientError,
    FhirServerError,
    FhirTransportError,
    Forbidden,
    Gone,
    InvalidServerResponse,
    MethodNotAllowed,
    NotFound,
    NotSent,
    PagingLoop,
    PreconditionFailed,
    ServerError,
    TooManyRequests,
    Unauthorized,
    UnprocessableEntity,
    UnsupportedServerCapability,
    UnsupportedServerVersion,
    error_for_status,
)
from .limits import ServerLimits, forget_limits, limits_for
from .outcome import OperationOutcome, OutcomeIssue, clean_diagnostics, parse_operation_outcome
from .references import (
    foreign_references,
    is_absolute,
    is_foreign_reference,
    local_reference,
    normalise_references,
    relative_reference,
)
from .results import EntryResult, WriteResult
from .retry import NO_RETRY, RetryPolicy

__all__ = [
    "NO_RETRY",
    "AuthConfig",
    "AuthenticationError",
    "BadRequest",
    "BasicAuth",
    "BearerTokenAuth",
    "BreakerState",
    "BudgetExhausted",
    "BulkExportCancelled",
    "BulkExportRefused",
    "BulkExportTimeout",
    "BulkManifest",
    "BulkOutput",
    "BulkStatus",
    "CircuitBreaker",
    "CircuitOpen",
    "Conflict",
    "EntryResult",
    "FhirClient",
    "FhirClientConfig",
    "FhirClientError",
    "FhirServerError",
    "FhirTransportError",
    "Forbidden",
    "Gone",
    "InvalidServerResponse",
    "MethodNotAllowed",
    "NotFound",
    "NotSent",
    "OperationOutcome",
    "OutcomeIssue",
    "PagingLoop",
    "PreconditionFailed",
    "PushStrategy",
    "RefreshableAuth",
    "ResourceCapability",
    "RetryPolicy",
    "ServerCapabilities",
    "ServerError",
    "ServerLimits",
    "SmartBackendAuth",
    "TooManyRequests",
    "Unauthorized",
    "UnprocessableEntity",
    "UnsupportedServerCapability",
    "UnsupportedServerVersion",
    "WriteResult",
    "build_auth",
    "build_client",
    "bundle_is_idempotent",
    "check_status",
    "choose_push_strategy",
    "clean_diagnostics",
    "delete_job",
    "download",
    "error_for_status",
    "foreign_references",
    "forget_limits",
    "ignored_parameter_issues",
    "is_absolute",
    "is_foreign_reference",
    "kick_off",
    "limits_for",
    "local_reference",
    "normalise_references",
    "parse_capability_statement",
    "parse_manifest",
    "parse_operation_outcome",
    "relative_reference",
    "release_for_version",
    "time_budget",
    "wait_for_manifest",
]

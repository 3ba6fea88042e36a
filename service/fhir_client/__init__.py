"""FHIR REST client: speaks FHIR over HTTP and knows nothing of Flask or our mappings.

with build_client(FhirClientConfig(base_url="https://fhir.example/r4")) as fhir:
    caps = fhir.capabilities()                      # /metadata, read once
    strategy = choose_push_strategy(caps, ["Observation"])
    fhir.update(resource)                           # PUT Type/id (update-as-create)
    for obs in fhir.search("Observation", {"subject": "Patient/1"}, limit=100):
        ...                                         # pages fetched lazily via link[next]
"""

from .auth import BasicAuth, BearerTokenAuth, RefreshableAuth, SmartBackendAuth
from .capabilities import (
    PushStrategy,
    ResourceCapability,
    ServerCapabilities,
    choose_push_strategy,
    parse_capability_statement,
    release_for_version,
)
from .client import FhirClient, bundle_is_idempotent
from .config import AuthConfig, FhirClientConfig, build_auth, build_client
from .errors import (
    AuthenticationError,
    BadRequest,
    Conflict,
    FhirClientError,
    FhirServerError,
    FhirTransportError,
    Forbidden,
    Gone,
    InvalidServerResponse,
    MethodNotAllowed,
    NotFound,
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
from .outcome import OperationOutcome, OutcomeIssue, parse_operation_outcome
from .results import EntryResult, WriteResult
from .retry import NO_RETRY, RetryPolicy

__all__ = [
    "NO_RETRY",
    "AuthConfig",
    "AuthenticationError",
    "BadRequest",
    "BasicAuth",
    "BearerTokenAuth",
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
    "choose_push_strategy",
    "error_for_status",
    "parse_capability_statement",
    "parse_operation_outcome",
    "release_for_version",
]

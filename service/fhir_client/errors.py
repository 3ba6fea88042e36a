"""The client's exception types; an HTTP status becomes a type only in `error_for_status`."""

from __future__ import annotations

from http import HTTPStatus

from .outcome import OperationOutcome


class FhirClientError(Exception):
    """Base of every error raised by service.fhir_client."""


class FhirTransportError(FhirClientError):
    """The server could not be reached or did not answer in time (after any retries)."""


class NotSent(FhirTransportError):
    """The request was not sent at all: the caller may try again without counting an attempt."""


class CircuitOpen(NotSent):
    """The server kept failing; calls are refused for `retry_after` seconds (circuit breaker)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BudgetExhausted(NotSent):
    """The caller's time budget (FhirClient.time_budget) was spent before this request."""


class InvalidServerResponse(FhirClientError):
    """The server answered, but not with the FHIR JSON we asked for."""


class UnsupportedServerVersion(FhirClientError):
    """The server speaks a FHIR version this client does not handle."""


class UnsupportedServerCapability(FhirClientError):
    """The server's CapabilityStatement lacks an interaction we need."""


class PagingLoop(FhirClientError):
    """A search Bundle's next link points at a page we have already read."""


class AuthenticationError(FhirClientError):
    """Obtaining an access token failed (token endpoint or SMART discovery)."""


class FhirServerError(FhirClientError):
    """The server answered with an error status; `outcome` holds its OperationOutcome if any."""

    def __init__(
        self,
        status: int,
        *,
        method: str,
        path: str,
        outcome: OperationOutcome | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.outcome = outcome
        self.retry_after = retry_after
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "HTTP error"
        # Diagnostics may echo submitted values, so the message carries issue codes only.
        codes = ", ".join(outcome.codes) if outcome and outcome.issues else "no OperationOutcome"
        super().__init__(f"{method} {path} -> {status} {reason} ({codes})")


class BadRequest(FhirServerError):
    """400: the request could not be parsed or failed basic validation."""


class Unauthorized(FhirServerError):
    """401: missing, invalid or expired credentials."""


class Forbidden(FhirServerError):
    """403: authenticated, but not allowed."""


class NotFound(FhirServerError):
    """404: unknown resource type or id."""


class MethodNotAllowed(FhirServerError):
    """405: the server does not support this interaction here."""


class Conflict(FhirServerError):
    """409: version conflict or duplicate (e.g. concurrent update)."""


class Gone(FhirServerError):
    """410: the resource was deleted."""


class PreconditionFailed(FhirServerError):
    """412: If-Match version mismatch, or a conditional request matched several resources."""


class UnprocessableEntity(FhirServerError):
    """422: the resource violated a profile or business rule."""


class TooManyRequests(FhirServerError):
    """429: rate limited; `retry_after` says how long the server asked us to wait."""


class ServerError(FhirServerError):
    """5xx: the server failed."""


_ERROR_BY_STATUS: dict[HTTPStatus, type[FhirServerError]] = {
    HTTPStatus.BAD_REQUEST: BadRequest,
    HTTPStatus.UNAUTHORIZED: Unauthorized,
    HTTPStatus.FORBIDDEN: Forbidden,
    HTTPStatus.NOT_FOUND: NotFound,
    HTTPStatus.METHOD_NOT_ALLOWED: MethodNotAllowed,
    HTTPStatus.CONFLICT: Conflict,
    HTTPStatus.GONE: Gone,
    HTTPStatus.PRECONDITION_FAILED: PreconditionFailed,
    HTTPStatus.UNPROCESSABLE_ENTITY: UnprocessableEntity,
    HTTPStatus.TOO_MANY_REQUESTS: TooManyRequests,
}


def error_for_status(
    status: int,
    *,
    method: str,
    path: str,
    outcome: OperationOutcome | None = None,
    retry_after: float | None = None,
) -> FhirServerError:
    """The one place where an HTTP error status becomes an exception type."""
    try:
        cls = _ERROR_BY_STATUS.get(HTTPStatus(status))
    except ValueError:
        cls = None
    if cls is None:
        cls = ServerError if status >= HTTPStatus.INTERNAL_SERVER_ERROR else FhirServerError
    return cls(status, method=method, path=path, outcome=outcome, retry_after=retry_after)

"""Plain settings for one target server, and the factories that turn them into a client."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from requests.auth import AuthBase

from .auth import BasicAuth, BearerTokenAuth, SigningAlg, SmartBackendAuth
from .breaker import CircuitBreaker
from .client import DEFAULT_USER_AGENT, FhirClient
from .limits import Limits
from .retry import RetryPolicy

AuthKind = Literal["none", "bearer", "basic", "smart-backend"]


@dataclass(frozen=True)
class AuthConfig:
    """Outbound auth for one server; secret fields are kept out of repr (and so out of logs)."""

    kind: AuthKind = "none"
    token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str | None = None
    private_key_pem: str | None = field(default=None, repr=False)
    private_key_path: str | None = None
    key_id: str | None = None
    alg: SigningAlg = "RS384"
    scope: str = "system/*.rs"
    token_url: str | None = None


@dataclass(frozen=True)
class FhirClientConfig:
    """Everything needed to talk to one FHIR server."""

    base_url: str
    auth: AuthConfig = field(default_factory=AuthConfig)
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    verify_tls: bool = True
    ca_bundle: str | None = None
    pool_size: int = 10
    max_attempts: int = 4
    retry_deadline: float = 60.0
    # Circuit breaker: after this many failed calls in a row (0: no breaker) ...
    breaker_failures: int = 3
    # ... calls are refused for this long, then one trial call may go.
    breaker_cooldown: float = 30.0
    user_agent: str = DEFAULT_USER_AGENT
    request_id_header: str = "X-Request-ID"
    # What one request may carry, whatever the server takes (its own caps are in its profile).
    limits: Limits = field(default_factory=Limits)

    @property
    def verify(self) -> bool | str:
        """requests' `verify`: a CA bundle path when given, else the on/off switch."""
        return self.ca_bundle if self.ca_bundle else self.verify_tls


def _require(value: str | None, name: str, kind: str) -> str:
    if not value:
        raise ValueError(f"auth kind {kind!r} needs {name}")
    return value


def build_auth(
    config: AuthConfig, *, fhir_base_url: str, verify: bool | str = True
) -> AuthBase | None:
    """The requests auth object for an AuthConfig (None for kind 'none')."""
    if config.kind == "none":
        return None
    if config.kind == "bearer":
        return BearerTokenAuth(_require(config.token, "token", config.kind))
    if config.kind == "basic":
        return BasicAuth(
            _require(config.username, "username", config.kind),
            _require(config.password, "password", config.kind),
        )
    if config.kind == "smart-backend":
        pem = config.private_key_pem
        if pem is None and config.private_key_path:
            pem = Path(config.private_key_path).read_text()
        return SmartBackendAuth(
            client_id=_require(config.client_id, "client_id", config.kind),
            private_key_pem=_require(pem, "private_key_pem or private_key_path", config.kind),
            key_id=_require(config.key_id, "key_id", config.kind),
            alg=config.alg,
            scope=config.scope,
            token_url=config.token_url,
            fhir_base_url=fhir_base_url,
            verify=verify,
        )
    raise ValueError(f"unknown auth kind {config.kind!r}")


def build_client(config: FhirClientConfig, *, retry: RetryPolicy | None = None) -> FhirClient:
    """A FhirClient configured from FhirClientConfig."""
    if config.ca_bundle and not Path(config.ca_bundle).is_file():
        raise ValueError(f"CA bundle {config.ca_bundle} does not exist")
    return FhirClient(
        config.base_url,
        auth=build_auth(config.auth, fhir_base_url=config.base_url, verify=config.verify),
        timeout=(config.connect_timeout, config.read_timeout),
        verify=config.verify,
        retry=retry
        or RetryPolicy(max_attempts=config.max_attempts, deadline=config.retry_deadline),
        pool_size=config.pool_size,
        user_agent=config.user_agent,
        request_id_header=config.request_id_header,
        breaker=CircuitBreaker(config.breaker_failures, config.breaker_cooldown)
        if config.breaker_failures > 0
        else None,
        limits=config.limits,
    )

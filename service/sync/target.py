"""The clinic's FHIR server as configured: a client built from our settings."""

from __future__ import annotations

from dataclasses import replace

from service.config import ConfigError, FhirServerSettings
from service.fhir_client import AuthConfig, FhirClient, FhirClientConfig, Limits, build_client


class NoFhirServer(ConfigError):
    """Push or pull was asked for, but no FHIR server is configured."""


def client_config(settings: FhirServerSettings) -> FhirClientConfig:
    """Our settings in the FHIR client's own terms (it knows nothing of our environment)."""
    if not settings.base_url:
        raise NoFhirServer("no FHIR server configured: set DIARYBRIDGE_FHIR_BASE_URL")
    auth = AuthConfig(
        kind=settings.auth,  # type: ignore[arg-type]  # checked by FhirServerSettings.check
        token=settings.bearer_token or None,
        username=settings.username or None,
        password=settings.password or None,
        client_id=settings.smart_client_id or None,
        private_key_path=settings.smart_private_key_file or None,
        key_id=settings.smart_key_id or None,
        alg=settings.smart_algorithm,  # type: ignore[arg-type]
        scope=settings.smart_scope,
        token_url=settings.smart_token_url or None,
    )
    return FhirClientConfig(
        base_url=settings.base_url,
        auth=auth,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        ca_bundle=settings.ca_bundle or None,
        max_attempts=settings.max_tries,
        retry_deadline=settings.deadline_seconds,
        breaker_failures=settings.breaker_failures,
        breaker_cooldown=settings.breaker_cooldown_seconds,
        # The server's profile holds this beside what is known or learned of the server.
        limits=Limits(transaction_entries=settings.chunk_size),
    )


def make_client(settings: FhirServerSettings) -> FhirClient:
    """A client for the configured server (TLS verified; a CA bundle may be configured)."""
    client = build_client(client_config(settings))
    client.default_page_size = settings.pull_page_size or None  # else the server's largest
    return client


def make_probe_client(settings: FhirServerSettings, timeout: float) -> FhirClient:
    """A client for readiness probes: one try within `timeout`, no breaker, no credentials.

    /metadata is public (FHIR RESTful API), and a probe must neither wait on retries nor open
    the circuit that deliveries share.
    """
    probe = replace(
        settings,
        auth="none",
        connect_timeout=min(settings.connect_timeout, timeout),
        read_timeout=timeout,
        max_tries=1,
        deadline_seconds=timeout,
        breaker_failures=0,
    )
    return build_client(client_config(probe))

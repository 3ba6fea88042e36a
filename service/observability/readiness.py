"""Readiness checks: the database answers, and the FHIR server (when configured) answers."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import requests
from sqlalchemy import text
from sqlalchemy.engine import Engine

from service.config import FhirServerSettings

log = logging.getLogger(__name__)

OK, FAILED, NOT_CONFIGURED = "ok", "failed", "not_configured"


@dataclass(frozen=True)
class Readiness:
    """Each check's outcome by name; ready when none failed."""

    checks: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        """Whether every check passed (or was not configured)."""
        return FAILED not in self.checks.values()


def database_answers(engine: Engine) -> bool:
    """Whether the database answers SELECT 1."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not ready", whatever its type
        log.warning("readiness: database check failed: %s", type(exc).__name__)
        return False
    return True


def fhir_server_answers(fhir: FhirServerSettings, timeout: float) -> bool:
    """Whether GET [base]/metadata answers 200 within `timeout` (TLS verified, no retries)."""
    try:
        response = requests.get(
            f"{fhir.base_url.rstrip('/')}/metadata",
            headers={"Accept": "application/fhir+json"},
            timeout=timeout,
            verify=fhir.ca_bundle or True,
        )
    except requests.RequestException as exc:
        log.warning("readiness: FHIR server check failed: %s", type(exc).__name__)
        return False
    if response.status_code != requests.codes.ok:
        log.warning("readiness: FHIR server /metadata answered %d", response.status_code)
        return False
    return True


def check_readiness(engine: Engine, fhir: FhirServerSettings, timeout: float) -> Readiness:
    """Run every check; the FHIR server only when a base URL is configured."""
    checks = {"database": OK if database_answers(engine) else FAILED}
    if not fhir.base_url:
        checks["fhir_server"] = NOT_CONFIGURED
    else:
        checks["fhir_server"] = OK if fhir_server_answers(fhir, timeout) else FAILED
    return Readiness(checks)

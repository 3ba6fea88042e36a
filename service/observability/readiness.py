"""Readiness checks: the database answers; the FHIR server's state is reported, never waited on.

The FHIR server does not gate readiness: every instance shares it, and while it is away the API
still accepts records into the outbox (the worker delivers later), so taking instances out of
rotation would only turn a delivery delay into an outage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus

from sqlalchemy.engine import Engine

from service.fhir_client import FhirClient
from service.store import SchemaGate, probe_write

log = logging.getLogger(__name__)

OK, FAILED, NOT_CONFIGURED, UNKNOWN = "ok", "failed", "not_configured", "unknown"
GATING = ("database",)  # checks whose failure makes the instance not ready


@dataclass(frozen=True)
class Readiness:
    """Each check's outcome by name; ready when none failed."""

    checks: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        """Whether every gating check passed."""
        return all(self.checks.get(name) != FAILED for name in GATING)


def database_answers(engine: Engine, schema: SchemaGate | None = None) -> bool:
    """Whether the database takes a write (rolled back): a full, read-only or unreachable
    store takes the instance out of rotation, not only one that is down."""
    try:
        if schema is not None:
            schema.ensure()
        probe_write(engine)
    except Exception as exc:  # any driver error means "not ready", whatever its type
        kind = getattr(exc, "kind", None)
        log.warning("readiness: database check failed: %s", kind or type(exc).__name__)
        return False
    return True


def fhir_server_answers(client: FhirClient) -> bool:
    """Whether GET [base]/metadata answers 200 now (through the client: its TLS and CA bundle,
    its timeouts; no credentials, as /metadata is public)."""
    try:
        response = client.send("GET", f"{client.base_url}/metadata", authenticate=False)
    except Exception as exc:  # refused, unreachable or timed out: all "failed"
        log.warning("readiness: FHIR server check failed: %s", type(exc).__name__)
        return False
    if response.status_code != HTTPStatus.OK:
        log.warning("readiness: FHIR server /metadata answered %d", response.status_code)
        return False
    return True


class FhirProbe:
    """The FHIR server's /metadata, probed in a background thread at most every `ttl` seconds.

    Asking never waits: it answers the last known state ("unknown" before the first probe
    ends) and starts a new probe when that state is stale. One probe runs at a time.
    """

    def __init__(
        self,
        client: Callable[[], FhirClient] | None,
        ttl: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # None: no FHIR server configured. A factory: the probe's client is made on first use.
        self._make_client, self.ttl = client, ttl
        self._client: FhirClient | None = None
        self._clock = clock
        self._lock = threading.Lock()
        self._state = UNKNOWN
        self._at: float | None = None
        self._running = False

    def state(self) -> str:
        """ok, failed or unknown, as last seen; starts a probe in the background when stale."""
        if self._make_client is None:
            return NOT_CONFIGURED
        with self._lock:
            stale = self._at is None or self._clock() - self._at >= self.ttl
            if stale and not self._running:
                self._running = True
                threading.Thread(
                    target=self._probe, name="diarybridge-fhir-probe", daemon=True
                ).start()
            return self._state

    def _probe_client(self) -> FhirClient:
        if self._client is None:
            assert self._make_client is not None  # state() probes only a configured server
            self._client = self._make_client()
        return self._client

    def _probe(self) -> None:
        state = FAILED
        try:
            state = OK if fhir_server_answers(self._probe_client()) else FAILED
        except Exception as exc:  # a client that cannot be built (e.g. a missing CA bundle)
            log.warning("readiness: no FHIR client: %s", type(exc).__name__)
        finally:
            with self._lock:
                self._state, self._at, self._running = state, self._clock(), False


def check_readiness(engine: Engine, fhir_state: str, schema: SchemaGate | None = None) -> Readiness:
    """Check the database now; report the FHIR server's state as given (never waited on)."""
    database = OK if database_answers(engine, schema) else FAILED
    checks = {"database": database, "fhir_server": fhir_state}
    return Readiness(checks)

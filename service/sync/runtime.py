"""What an app process holds for sync: one FHIR client, pushers made from it, the worker thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from mappings.signals import RuleSet
from service.config import FhirServerSettings
from service.fhir_client import BreakerState, FhirClient
from service.signals.push import Touched, push_signals
from service.sync.push import Delivery, Outcome, Pusher
from service.sync.target import make_client
from service.sync.worker import DEFAULT_LEASE_SECONDS, Worker

log = logging.getLogger(__name__)
# Deliveries that change what the server holds, and so maybe the patient's signals.
CHANGED = (Outcome.CREATED, Outcome.UPDATED, Outcome.RETRACTED)


class SyncRuntime:
    """Lazily connects to the configured FHIR server; owns the optional in-process worker."""

    def __init__(
        self,
        fhir: FhirServerSettings,
        sessions: sessionmaker[Session],
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        batch_size: int = 50,
        signal_rules: RuleSet | None = None,
        mg_adl_questionnaire_response: bool = False,
        signal_care_team: str = "",
    ) -> None:
        self.fhir = fhir
        self.mg_adl_questionnaire_response = mg_adl_questionnaire_response
        self.sessions = sessions
        self.lease_seconds = lease_seconds
        self.batch_size = batch_size
        self.signal_rules = signal_rules  # None: signals are not pushed
        self.signal_care_team = signal_care_team  # "": no Communication to the care team
        self._client: FhirClient | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def client(self) -> FhirClient:
        """The one client (connection pool, cached capabilities) of this process."""
        with self._lock:
            if self._client is None:
                self._client = make_client(self.fhir)
            return self._client

    def circuit_open(self) -> bool:
        """Whether calls to the FHIR server are being refused now (its circuit breaker is open)."""
        with self._lock:
            client = self._client
        return (
            client is not None
            and client.breaker is not None
            and (client.breaker.state is BreakerState.OPEN)
        )

    def pusher(self, request_id: str | None = None) -> Pusher:
        """A pusher using the shared client; request_id is sent on with every call."""
        return Pusher(
            self.client,
            chunk_size=self.fhir.chunk_size,
            method=self.fhir.push_strategy,
            request_id=request_id,
            mg_adl_questionnaire_response=self.mg_adl_questionnaire_response,
        )

    def worker(self, request_id: str | None = None, name: str | None = None) -> Worker:
        """A worker delivering through this runtime's client."""
        return Worker(
            self.sessions,
            lambda: self.pusher(request_id),
            batch_size=self.batch_size,
            lease_seconds=self.lease_seconds,
            name=name,
            after_delivery=self._push_signals(request_id),
        )

    def _push_signals(self, request_id: str | None) -> Callable[[list[Delivery]], None] | None:
        rules = self.signal_rules
        if rules is None:
            return None

        def push(deliveries: list[Delivery]) -> None:
            touched = [
                Touched(d.entry.namespace, d.entry.kind, d.entry.source_id, d.entry.patient_key)
                for d in deliveries
                if d.outcome in CHANGED
            ]
            try:
                push_signals(
                    self.sessions,
                    self.client,
                    rules,
                    touched,
                    method=self.fhir.push_strategy,
                    request_id=request_id,
                    care_team=self.signal_care_team,
                )
            except Exception as exc:  # the records are delivered; signals must not undo that
                # Type only: messages may quote data. The next delivery for the patient retries.
                log.warning("signals not pushed: %s", type(exc).__name__)

        return push

    def start_worker(self) -> None:
        """Run a worker in a daemon thread of this process until stop_worker()."""
        if self._thread is not None or not self.fhir.base_url:
            return
        worker = self.worker()
        self._thread = threading.Thread(
            target=worker.run, args=(self._stop,), name="diarybridge-sync-worker", daemon=True
        )
        self._thread.start()

    def stop_worker(self, timeout: float = 10.0) -> None:
        """Ask the worker thread to stop after its current batch, and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

"""The app's export runner: one background thread that claims jobs from the store and runs them.

The thread lives only while there is work. Job state is in the database, so a restart loses
nothing: a job left 'running' by a dead process has a stale heartbeat and is claimed again
(its half-written files are discarded and it starts afresh), or failed after too many tries.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from service.exports.fhir_source import ExportCancelled
from service.exports.request import ExportRequestError, export_request
from service.exports.run import run_export
from service.fhir_client import FhirClient, FhirClientError
from service.store import StorageUnavailable
from service.store import exports as jobs
from service.store.exports import ExportJobLost, ExportJobView
from service.store.models import ExportJobStatus

log = logging.getLogger(__name__)

DEFAULT_STALE_AFTER = 60.0
DEFAULT_HEARTBEAT_EVERY = 5.0


class ExportRunner:
    """Runs queued export jobs one after another in a daemon thread of this process."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        client_factory: Callable[[], FhirClient],
        exports_dir: Path,
        *,
        stale_after: float = DEFAULT_STALE_AFTER,
        heartbeat_every: float = DEFAULT_HEARTBEAT_EVERY,
        use_bulk: bool | None = None,
    ) -> None:
        self.sessions = sessions
        self.client_factory = client_factory
        self.exports_dir = exports_dir
        self.stale_after = stale_after
        self.heartbeat_every = heartbeat_every
        self.use_bulk = use_bulk
        self.runner_id = f"export-{uuid.uuid4().hex[:12]}"
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def job_dir(self, job_id: str) -> Path:
        """Where one job's files live."""
        return self.exports_dir / job_id

    def wake(self) -> None:
        """Start the thread unless it is already running."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping.clear()
            self._thread = threading.Thread(
                target=self._loop, name=f"diarybridge-{self.runner_id}", daemon=True
            )
            self._thread.start()

    def resume_open_jobs(self) -> int:
        """At start: wake the thread if jobs are queued or were left running; returns how many."""
        try:
            with self.sessions.begin() as session:
                count = jobs.open_export_jobs(session)
        except StorageUnavailable as exc:  # the app starts anyway; a new job wakes the runner
            log.warning("export runner: database unavailable at start (%s)", exc.kind)
            return 0
        if count:
            log.info("export runner: %d open job(s) found at start", count)
            self.wake()
        return count

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to stop after its current step, and wait for it."""
        self._stopping.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        """Wait until the thread has no more work (for tests and the CLI)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            with self.sessions.begin() as session:
                job = jobs.claim_export_job(session, self.runner_id, stale_after=self.stale_after)
                waiting = 0 if job else jobs.open_export_jobs(session)
            if job is not None:
                self._run(job)
            elif waiting:
                # Another runner's job may be running, or dead: look again once it could be stale.
                self._stopping.wait(min(self.stale_after / 4, 5.0))
            else:
                return

    def _run(self, job: ExportJobView) -> None:
        out_dir = self.job_dir(job.id)
        last_beat = time.monotonic()
        progress = "starting"
        cancelled = False

        def beat(force: bool = False) -> bool:
            nonlocal last_beat, cancelled
            if not force and time.monotonic() - last_beat < self.heartbeat_every:
                return cancelled
            last_beat = time.monotonic()
            with self.sessions.begin() as session:
                status = jobs.heartbeat_export_job(session, job.id, self.runner_id, progress)
            cancelled = status != ExportJobStatus.RUNNING.value
            return cancelled

        def report(text: str) -> None:
            nonlocal progress
            progress = text
            beat()

        def should_stop() -> bool:
            return self._stopping.is_set() or beat()

        log.info("export job %s: run %d started", job.id, job.attempts)
        try:
            request = export_request(job.request)
            with self.client_factory() as fhir:
                manifest = run_export(
                    fhir,
                    request,
                    out_dir,
                    url_for=lambda name: f"{job.request_url.rstrip('/')}/{job.id}/files/{name}",
                    requires_access_token=True,
                    request_url=job.request_url,
                    report=report,
                    should_stop=should_stop,
                    use_bulk=self.use_bulk,
                )
            with self.sessions.begin() as session:
                status = jobs.complete_export_job(session, job.id, self.runner_id, manifest)
            if status == ExportJobStatus.CANCELLED.value:
                shutil.rmtree(out_dir, ignore_errors=True)
            log.info("export job %s: %s", job.id, status)
        except ExportCancelled:
            if self._stopping.is_set() and not cancelled:
                with self.sessions.begin() as session:
                    jobs.release_export_job(session, job.id, self.runner_id)
                log.info("export job %s: runner stopping, job queued again", job.id)
            else:
                shutil.rmtree(out_dir, ignore_errors=True)
                log.info("export job %s: cancelled", job.id)
        except ExportJobLost:
            log.warning("export job %s: taken over by another runner", job.id)
        except Exception as exc:  # a job's failure must not kill the runner
            self._fail(job, exc)

    def _fail(self, job: ExportJobView, exc: Exception) -> None:
        # Client and request errors carry codes and field names, never values; others: type only.
        safe = isinstance(exc, FhirClientError | ExportRequestError)
        message = f"{type(exc).__name__}: {exc}" if safe else type(exc).__name__
        log.warning("export job %s failed: %s", job.id, message)
        shutil.rmtree(self.job_dir(job.id), ignore_errors=True)
        try:
            with self.sessions.begin() as session:
                jobs.fail_export_job(session, job.id, self.runner_id, message)
        except ExportJobLost:
            log.warning("export job %s: taken over by another runner", job.id)

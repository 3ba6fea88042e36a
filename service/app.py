"""The application factory: settings in, a configured Flask app out; nothing happens at import."""

from __future__ import annotations

import hashlib
import logging
import secrets

from flask import Flask, request

from mappings import canonical
from mappings.signals import with_overrides
from service import observability, wiring
from service.api import (
    audit,
    auth,
    bulk,
    convert,
    errors,
    exports,
    health,
    metadata,
    ops,
    patients,
    questionnaires,
    report,
    signals,
    sync,
)
from service.config import Settings
from service.exports.jobs import make_runner
from service.observability.http import install_request_hooks
from service.observability.readiness import FhirProbe
from service.security import Authenticator, SecuritySettings
from service.store import SchemaGate, StorageUnavailable, make_engine, make_session_factory
from service.sync.requests import outbox_status
from service.sync.runtime import SyncRuntime
from service.sync.target import make_probe_client

log = logging.getLogger(__name__)
_warned_random_page_key = False


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from settings (read from the environment when none are given)."""
    settings = settings or Settings.from_env()
    observability.configure_logging(settings.log_level, settings.log_format)
    canonical.configure(settings.canonical_base)  # where our local CodeSystems live
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["TESTING"] = settings.testing

    engine = make_engine(settings.database_url)
    # The schema is ours to keep current (safe when several processes start). A database that
    # cannot be reached yet does not stop the start: requests answer 503 until it can.
    schema = SchemaGate(engine)
    try:
        schema.ensure()
    except StorageUnavailable as exc:
        log.warning("database unavailable at start (%s); retried on use", exc.kind)
    sessions = make_session_factory(engine)
    # A clinic's rule overrides, checked now: a bad file stops the start, not a later request.
    signal_rules = with_overrides(settings.signal_rules)
    fhir = settings.fhir
    parts = wiring.Wiring(
        settings=settings,
        engine=engine,
        schema=schema,
        sessions=sessions,
        signal_rules=signal_rules,
        sync=SyncRuntime(
            fhir,
            sessions,
            lease_seconds=settings.lease_seconds,
            batch_size=settings.worker_batch,
            signal_rules=signal_rules,
            signal_care_team=settings.signal_care_team,
            mg_adl_questionnaire_response=settings.mg_adl_questionnaire_response,
        ),
        page_key=page_signing_key(settings.page_token_key),
        fhir_probe=FhirProbe(
            (lambda: make_probe_client(fhir, settings.readiness_timeout)) if fhir.base_url else None
        ),
        metrics=observability.install_metrics(lambda: outbox_status(sessions)),
        authenticator=Authenticator(SecuritySettings.from_mapping(settings.security_env)),
        exports=make_runner(settings, sessions),
    )
    wiring.install(app, parts)

    errors.register_error_handlers(app)

    # First, so the request id exists before authentication and its access line comes last.
    install_request_hooks(app, parts.metrics)
    auth.install(app)
    audit.install(app)

    @app.before_request  # after the request id and authentication hooks, so 503s carry both
    def _schema_current() -> None:
        if request.endpoint not in ("health.healthz", "health.readyz"):
            schema.ensure()  # raises StorageUnavailable (503) while the database is away

    app.register_blueprint(health.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(convert.bp)
    app.register_blueprint(sync.bp)
    app.register_blueprint(patients.bp)
    app.register_blueprint(report.bp)
    app.register_blueprint(signals.bp)
    app.register_blueprint(exports.bp)
    parts.exports.resume_open_jobs()  # jobs a restart interrupted
    app.register_blueprint(bulk.bp)  # Bulk Data $export doors onto the same export jobs
    app.register_blueprint(metadata.bp)
    app.register_blueprint(questionnaires.bp)
    if settings.worker_in_process and not settings.testing:
        # Delivers what POST /sync queued; a no-op without a FHIR server.
        parts.sync.start_worker()
    return app


def page_signing_key(configured: str) -> bytes:
    """The key for `_page` tokens: derived from the configured one, else random for this process."""
    global _warned_random_page_key
    if configured:
        # Derived, so the same secret reused elsewhere never signs our tokens verbatim.
        return hashlib.sha256(b"diarybridge-page-token\x00" + configured.encode()).digest()
    if not _warned_random_page_key:
        _warned_random_page_key = True  # once per process: tests build many apps
        log.warning(
            "DIARYBRIDGE_PAGE_TOKEN_KEY is not set: next-page links work only on this process"
        )
    return secrets.token_bytes(32)

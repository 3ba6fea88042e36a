"""The application factory: settings in, a configured Flask app out; nothing happens at import."""

from __future__ import annotations

import hashlib
import logging
import secrets

from flask import Flask, request

from mappings import canonical
from mappings.signals import with_overrides
from service import observability
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
from service.security import Authenticator, SecuritySettings
from service.store import (
    SchemaGate,
    StatusCounts,
    StorageUnavailable,
    make_engine,
    make_session_factory,
    status_counts,
)
from service.sync.runtime import SyncRuntime

log = logging.getLogger(__name__)
_warned_random_page_key = False


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from settings (read from the environment when none are given)."""
    settings = settings or Settings.from_env()
    observability.configure_logging(settings.log_level, settings.log_format)
    canonical.configure(settings.canonical_base)  # where our local CodeSystems live
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
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
    app.extensions["diarybridge.schema"] = schema
    app.extensions["diarybridge.engine"] = engine
    app.extensions["diarybridge.sessions"] = make_session_factory(engine)
    # A clinic's rule overrides, checked now: a bad file stops the start, not a later request.
    app.extensions["diarybridge.signal_rules"] = with_overrides(settings.signal_rules)
    app.extensions["diarybridge.sync"] = SyncRuntime(
        settings.fhir,
        app.extensions["diarybridge.sessions"],
        lease_seconds=settings.lease_seconds,
        batch_size=settings.worker_batch,
        signal_rules=app.extensions["diarybridge.signal_rules"],
        signal_care_team=settings.signal_care_team,
        mg_adl_questionnaire_response=settings.mg_adl_questionnaire_response,
    )
    app.extensions["diarybridge.page_key"] = page_signing_key(settings.page_token_key)

    errors.register_error_handlers(app)

    # First, so the request id exists before authentication and its access line comes last.
    metrics = observability.install_metrics(app.extensions, lambda: _outbox_counts(app))
    observability.install_request_hooks(app, metrics)
    auth.install(app, Authenticator(SecuritySettings.from_mapping(settings.security_env)))
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
    exports.install(app)  # its blueprint, and the runner that resumes interrupted jobs
    app.register_blueprint(bulk.bp)  # Bulk Data $export doors onto the same export jobs
    app.register_blueprint(metadata.bp)
    app.register_blueprint(questionnaires.bp)
    if settings.worker_in_process and not settings.testing:
        # Delivers what POST /sync queued; a no-op without a FHIR server.
        app.extensions["diarybridge.sync"].start_worker()
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


def _outbox_counts(app: Flask) -> StatusCounts:
    with app.extensions["diarybridge.sessions"]() as session:
        return status_counts(session)

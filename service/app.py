"""The application factory: settings in, a configured Flask app out; nothing happens at import."""

from __future__ import annotations

import secrets

from flask import Flask

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
    report,
    sync,
)
from service.config import Settings
from service.security import Authenticator, SecuritySettings
from service.store import StatusCounts, make_engine, make_session_factory, status_counts, upgrade
from service.sync.runtime import SyncRuntime


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from settings (read from the environment when none are given)."""
    settings = settings or Settings.from_env()
    observability.configure_logging(settings.log_level, settings.log_format)
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["TESTING"] = settings.testing

    engine = make_engine(settings.database_url)
    upgrade(engine)  # the schema is ours to keep current; safe when several processes start
    app.extensions["diarybridge.engine"] = engine
    app.extensions["diarybridge.sessions"] = make_session_factory(engine)
    app.extensions["diarybridge.sync"] = SyncRuntime(
        settings.fhir,
        app.extensions["diarybridge.sessions"],
        lease_seconds=settings.lease_seconds,
        batch_size=settings.worker_batch,
    )
    # Signs the page tokens of FHIR search pass-through; tokens need not outlive the process.
    app.extensions["diarybridge.page_key"] = secrets.token_bytes(32)

    errors.register_error_handlers(app)
    # First, so the request id exists before authentication and its access line comes last.
    metrics = observability.install_metrics(app.extensions, lambda: _outbox_counts(app))
    observability.install_request_hooks(app, metrics)
    auth.install(app, Authenticator(SecuritySettings.from_mapping(settings.security_env)))
    audit.install(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(convert.bp)
    app.register_blueprint(sync.bp)
    app.register_blueprint(patients.bp)
    app.register_blueprint(report.bp)
    exports.install(app)  # its blueprint, and the runner that resumes interrupted jobs
    app.register_blueprint(bulk.bp)  # Bulk Data $export doors onto the same export jobs
    app.register_blueprint(metadata.bp)
    if settings.worker_in_process and not settings.testing:
        # Delivers what POST /sync queued; a no-op without a FHIR server.
        app.extensions["diarybridge.sync"].start_worker()
    return app


def _outbox_counts(app: Flask) -> StatusCounts:
    with app.extensions["diarybridge.sessions"]() as session:
        return status_counts(session)

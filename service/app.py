"""The application factory: settings in, a configured Flask app out; nothing happens at import."""

from __future__ import annotations

import logging

from flask import Flask

from service.api import auth, convert, errors, health
from service.config import Settings
from service.security import Authenticator, SecuritySettings
from service.store import make_engine, make_session_factory, upgrade


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from settings (read from the environment when none are given)."""
    settings = settings or Settings.from_env()
    logging.basicConfig(level=settings.log_level)
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["TESTING"] = settings.testing

    engine = make_engine(settings.database_url)
    upgrade(engine)  # the schema is ours to keep current; safe when several processes start
    app.extensions["diarybridge.engine"] = engine
    app.extensions["diarybridge.sessions"] = make_session_factory(engine)

    errors.register_error_handlers(app)
    auth.install(app, Authenticator(SecuritySettings.from_mapping(settings.security_env)))
    app.register_blueprint(health.bp)
    app.register_blueprint(convert.bp)
    return app

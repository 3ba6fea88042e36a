"""The application factory: settings in, a configured Flask app out; nothing happens at import."""

from __future__ import annotations

import logging

from flask import Flask

from service.api import auth, convert, errors, health
from service.config import Settings
from service.security import Authenticator, SecuritySettings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from settings (read from the environment when none are given)."""
    settings = settings or Settings.from_env()
    logging.basicConfig(level=settings.log_level)
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["TESTING"] = settings.testing
    errors.register_error_handlers(app)
    auth.install(app, Authenticator(SecuritySettings.from_mapping(settings.security_env)))
    app.register_blueprint(health.bp)
    app.register_blueprint(convert.bp)
    return app

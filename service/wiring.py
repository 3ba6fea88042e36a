"""What create_app builds once and hooks and views use: one typed object, not string keys.

The app keeps its Wiring under one key of `app.extensions`; `of(app)` and `current()` are the
only readers. Views hand its parts (sessions, the sync runtime, the export runner) to use cases.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from mappings.signals import RuleSet
from service.config import Settings
from service.exports import ExportRunner
from service.observability import Metrics
from service.observability.readiness import FhirProbe
from service.security import Authenticator
from service.store import SchemaGate
from service.sync.runtime import SyncRuntime

KEY = "diarybridge"


@dataclass
class Wiring:
    """The app's long-lived parts (built by create_app; tests may swap one, e.g. the engine)."""

    settings: Settings
    engine: Engine
    schema: SchemaGate
    sessions: sessionmaker[Session]
    signal_rules: RuleSet  # the clinic's rules, checked at start
    sync: SyncRuntime  # the FHIR client and the worker
    page_key: bytes  # signs `_page` tokens
    fhir_probe: FhirProbe
    metrics: Metrics
    authenticator: Authenticator
    exports: ExportRunner


def install(app: Flask, wiring: Wiring) -> None:
    """Give the app its wiring."""
    app.extensions[KEY] = wiring


def of(app: Flask) -> Wiring:
    """The wiring of `app`."""
    wiring: Wiring = app.extensions[KEY]
    return wiring


def current() -> Wiring:
    """The wiring of the app serving this request."""
    wiring: Wiring = current_app.extensions[KEY]
    return wiring

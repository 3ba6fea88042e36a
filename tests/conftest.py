"""Fixtures shared by every tier: synthetic credentials, settings and an app on a temp database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.app import create_app
from service.config import Settings

PATIENT = "Patient/synthetic-mg-001"
OTHER_PATIENT = "Patient/synthetic-mg-002"

# Synthetic API keys, one per kind of user; only their hashes would be configured in production.
KEYS = {
    "diary_app": {
        "key": "diary-app-key-0123456789",
        "client_id": "mg-diary-app",
        "scopes": "patient/*.read patient/*.write",
        "patient": PATIENT,
    },
    "clinician": {
        "key": "clinician-key-0123456789",
        "client_id": "clinic-viewer",
        "scopes": "user/*.read",
    },
    "batch": {
        "key": "batch-job-key-0123456789",
        "client_id": "registry-export",
        "scopes": "system/*.read system/*.write",
    },
}


def headers(who: str) -> dict[str, str]:
    """Request headers carrying the API key of one synthetic user."""
    return {"X-API-Key": KEYS[who]["key"]}


def make_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment like a deployment's, on a temporary SQLite file."""
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'diarybridge.sqlite3'}",
        "DIARYBRIDGE_API_KEYS": json.dumps(list(KEYS.values())),
        "DIARYBRIDGE_TESTING": "true",
    }
    env.update(extra)
    return env


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    yield create_app(Settings.from_env(make_env(tmp_path)))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()

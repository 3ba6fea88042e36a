"""End-to-end fixtures: Debian's chromium (installed here if missing), a FHIR server with a
synthetic patient, and the app served over HTTP by a real server thread."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from service.app import create_app
from service.config import Settings
from tests.conftest import KEYS, make_env
from tests.fhir_server import FhirServerError, RunningServer, start_fhir_server
from tests.unit.imports.synthetic import seed_patient

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of a headless-capable chromium; apt-get installs it when we are root."""
    if not os.path.exists(CHROMIUM) and hasattr(os, "geteuid") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
        if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False)
            subprocess.run(install, env=env, capture_output=True, check=False)
    if not os.path.exists(CHROMIUM):
        # Fail, never skip: a browser test that silently vanishes proves nothing.
        pytest.fail(f"{CHROMIUM} is missing and could not be installed", pytrace=False)
    return CHROMIUM


@pytest.fixture(scope="session")
def e2e_fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    try:
        server = start_fhir_server(data_dir=tmp_path_factory.mktemp("e2e-fhir"))
    except FhirServerError as exc:
        pytest.fail(f"the test FHIR server did not start: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def report_patient(e2e_fhir_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A synthetic patient with three months of diary entries and infusions on the server."""
    patient = f"synthetic-e2e-{datetime.now(UTC).strftime('%H%M%S%f')}"
    db = tmp_path_factory.mktemp("e2e-seed") / "seed.sqlite3"
    seed_patient(e2e_fhir_server.base_url, str(db), f"Patient/{patient}", 90)
    return patient


@dataclass
class LiveServer:
    """The app on http://127.0.0.1:<port>, and the paths it was asked for."""

    url: str
    paths: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def live_server(
    e2e_fhir_server: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    env = make_env(
        tmp_path_factory.mktemp("e2e-app"), DIARYBRIDGE_FHIR_BASE_URL=e2e_fhir_server.base_url
    )
    app = create_app(Settings.from_env(env))
    key = KEYS["clinician"]["key"]
    seen: list[str] = []

    def as_clinician(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        # A browser given a URL sends no API key; stand in for the clinic's login proxy.
        seen.append(environ.get("PATH_INFO", ""))
        environ["HTTP_X_API_KEY"] = key
        return app(environ, start_response)

    server = make_server("127.0.0.1", 0, as_clinician, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield LiveServer(f"http://127.0.0.1:{server.server_port}", seen)
    server.shutdown()
    thread.join(10)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """tests/artifacts/ (git-ignored): screenshots kept for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def chromium_args(chromium: str, profile: Path) -> list[str]:
    """Headless, offline-safe flags: no GPU, no QUIC, no background traffic, own profile."""
    return [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        # Anything not on this machine goes to a closed port: the page must not need internet.
        "--proxy-server=http://127.0.0.1:9",
        f"--user-data-dir={profile}",
    ]


@pytest.fixture
def run_chromium(chromium: str, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [*chromium_args(chromium, tmp_path / "profile"), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    assert shutil.which(chromium)
    return run

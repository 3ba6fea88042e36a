"""The Dockerfile's own gunicorn command serves the app: /healthz answers 200 and logs are JSON."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
STARTUP_SECONDS = 30


def dockerfile_command() -> list[str]:
    """The exec-form CMD of the Dockerfile's last stage, as a list of arguments."""
    commands = [
        line.removeprefix("CMD").strip()
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.startswith("CMD ")
    ]
    assert commands, "the Dockerfile has no CMD"
    command: list[str] = json.loads(commands[-1])
    assert command[0] == "gunicorn", command
    return command


def bound_to(command: list[str], address: str) -> list[str]:
    """The same command listening on `address` instead of the container's 0.0.0.0:8080."""
    result = list(command)
    for index, arg in enumerate(result):
        if arg in ("--bind", "-b"):
            result[index + 1] = address
            return result
        if arg.startswith("--bind="):
            result[index] = f"--bind={address}"
            return result
    raise AssertionError(f"no --bind in {command}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def gunicorn_executable() -> str:
    beside_python = Path(sys.executable).with_name("gunicorn")
    found = str(beside_python) if beside_python.exists() else shutil.which("gunicorn")
    assert found, "gunicorn is not installed"
    return found


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    port = free_port()
    command = bound_to(dockerfile_command(), f"127.0.0.1:{port}")
    command[0] = gunicorn_executable()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'gunicorn.sqlite3'}",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DIARYBRIDGE_FHIR_BASE_URL", None)
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, text=True
        )
        try:
            yield f"http://127.0.0.1:{port}", process, log_path
        finally:
            process.send_signal(signal.SIGTERM)  # gunicorn's graceful shutdown
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def wait_for(url: str, process: subprocess.Popen[str], log_path: Path) -> requests.Response:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            return requests.get(url, timeout=2)
        except (requests.ConnectionError, requests.Timeout):  # workers still booting
            time.sleep(0.2)
    pytest.fail(f"no answer from {url} in {STARTUP_SECONDS}s:\n{log_path.read_text()}")


def test_dockerfile_command_serves_healthz(
    served: tuple[str, subprocess.Popen[str], Path],
) -> None:
    base_url, process, log_path = served
    response = wait_for(f"{base_url}/healthz", process, log_path)
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    ready = requests.get(f"{base_url}/readyz", headers={"X-Request-ID": "gunicorn-1"}, timeout=5)
    assert ready.status_code == 200 and ready.headers["X-Request-ID"] == "gunicorn-1"
    time.sleep(0.2)  # let the worker's log line reach the file
    access = [
        json.loads(line)
        for line in log_path.read_text().splitlines()
        if line.startswith("{") and '"diarybridge.access"' in line
    ]
    assert {"route": "/readyz", "request_id": "gunicorn-1", "status": 200}.items() <= next(
        line for line in access if line["route"] == "/readyz"
    ).items()

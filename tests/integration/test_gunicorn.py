"""The Dockerfile's own gunicorn command serves the app: /healthz answers 200 and logs are JSON."""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import os
import re
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
from prometheus_client.parser import text_string_to_metric_families

from tests.api.samples import diary
from tests.conftest import KEYS, headers

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
STARTUP_SECONDS = 30
BATCH = headers("batch")  # system/*.read/write: may sync, search any patient and read /metrics


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


def instance_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This machine's environment for one instance: its own database, a HOME of the test's own
    (gunicorn's default control socket lives there) and none of the settings under test."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HOME": str(tmp_path / "home")}
    for name in (
        "DIARYBRIDGE_FHIR_BASE_URL",
        "DIARYBRIDGE_PAGE_TOKEN_KEY",
        "DIARYBRIDGE_WORKERS",
        "DIARYBRIDGE_THREADS",
        "PROMETHEUS_MULTIPROC_DIR",
        "XDG_RUNTIME_DIR",
    ):
        env.pop(name, None)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'gunicorn.sqlite3'}"
    env.update(extra)
    return env


def serve_command(port: int) -> list[str]:
    """`diarybridge serve` as installed beside this Python."""
    return [str(Path(sys.executable).with_name("diarybridge")), "serve", "--port", str(port)]


def command_for(kind: str, port: int) -> list[str]:
    """The Dockerfile's gunicorn command or `diarybridge serve`, on 127.0.0.1:`port`."""
    if kind == "serve":
        return serve_command(port)
    command = bound_to(dockerfile_command(), f"127.0.0.1:{port}")
    command[0] = gunicorn_executable()
    return command


@contextlib.contextmanager
def running(
    command: list[str], env: dict[str, str], log_path: Path
) -> Iterator[subprocess.Popen[str]]:
    """The command as a process logging to `log_path`, stopped gracefully (then killed) after."""
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, text=True
        )
        try:
            yield process
        finally:
            process.send_signal(signal.SIGTERM)  # gunicorn's graceful shutdown
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    with running(command_for("dockerfile", port), instance_env(tmp_path), log_path) as process:
        yield f"http://127.0.0.1:{port}", process, log_path


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


# Several workers, one instance: the tests below page across workers and scrape their sum.

OBSERVATIONS_ROUTE = "/patients/<patient>/observations"
TRIES_PER_LINK = 60  # fresh connections until the other worker answers; each worker accepts some


def access_pid(log_path: Path, request_id: str) -> int:
    """The pid of the worker whose access line carries `request_id` (written before it answered)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in log_path.read_text().splitlines():
            if line.startswith("{") and f'"request_id": "{request_id}"' in line:
                entry = json.loads(line)
                if entry["logger"] == "diarybridge.access":
                    pid: int = entry["pid"]
                    return pid
        time.sleep(0.05)
    pytest.fail(f"no access line for {request_id}")


def requests_by_pid(log_path: Path, route: str) -> collections.Counter[int]:
    """Answered 200s of `route`, counted per worker pid from the access lines."""
    counts: collections.Counter[int] = collections.Counter()
    for line in log_path.read_text().splitlines():
        if line.startswith("{") and '"diarybridge.access"' in line:
            entry = json.loads(line)
            if entry["route"] == route and entry["status"] == 200:
                counts[entry["pid"]] += 1
    return counts


def scraped(base_url: str, name: str, labels: dict[str, str]) -> float:
    """One sample's value from GET /metrics."""
    response = requests.get(f"{base_url}/metrics", headers=BATCH, timeout=10)
    assert response.status_code == 200, response.text
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    pytest.fail(f"no {name}{labels} in /metrics")


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["dockerfile", "serve"])
def test_two_workers_share_page_tokens_and_metrics(
    kind: str, tmp_path: Path, fhir_server: str
) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = instance_env(
        tmp_path,
        DIARYBRIDGE_WORKERS="2",
        DIARYBRIDGE_THREADS="2",
        DIARYBRIDGE_FHIR_BASE_URL=fhir_server,
        DIARYBRIDGE_API_KEYS=json.dumps(list(KEYS.values())),
        DIARYBRIDGE_WORKER_IN_PROCESS="false",  # pushes happen in the request here
    )
    log_path = tmp_path / "gunicorn.log"
    with running(command_for(kind, port), env, log_path) as process:
        assert wait_for(f"{base_url}/healthz", process, log_path).status_code == 200
        patient = f"synthetic-workers-{kind}-{time.time_ns()}"
        entries = [
            diary(
                entry_id=f"{patient}-day-{day}",
                patient={"reference": f"Patient/{patient}"},
                recorded_at=f"2026-10-0{day + 1}T20:00:00+00:00",
            )
            for day in range(2)
        ]
        pushed = requests.post(
            f"{base_url}/sync/diary-entries", json=entries, headers=BATCH, timeout=120
        )
        assert pushed.status_code == 200, pushed.text

        asked = itertools.count()

        def get(path: str) -> tuple[requests.Response, int]:
            request_id = f"workers-{next(asked)}"
            response = requests.get(  # a new connection each time, so either worker may accept
                path if path.startswith("http") else f"{base_url}{path}",  # next links: absolute
                headers={**BATCH, "X-Request-ID": request_id, "Connection": "close"},
                timeout=60,
            )
            return response, access_pid(log_path, request_id)

        page, signer = get(f"/patients/{patient}/observations?_count=5")
        assert page.status_code == 200, page.text
        seen = [e["resource"]["id"] for e in page.json()["entry"]]
        crossed = 0
        while nxt := next(
            (lk["url"] for lk in page.json()["link"] if lk["relation"] == "next"), None
        ):
            assert crossed < 24, "more pages than resources"
            assert nxt.startswith(f"{base_url}/patients/"), nxt  # absolute, on the host asked
            for _ in range(TRIES_PER_LINK):
                page, answered_by = get(nxt)
                # Every answer counts, the signer's own too; a foreign key would be a 400 here.
                assert page.status_code == 200, page.text
                if answered_by != signer:
                    break
            assert answered_by != signer, f"one worker took {TRIES_PER_LINK} connections in a row"
            crossed += 1
            signer = answered_by
            seen.extend(e["resource"]["id"] for e in page.json()["entry"])
        assert crossed >= 4 and len(seen) == len(set(seen)) == 2 * 12

        by_pid = requests_by_pid(log_path, OBSERVATIONS_ROUTE)
        assert len(by_pid) == 2, by_pid  # both workers answered ...
        labels = {"method": "GET", "route": OBSERVATIONS_ROUTE, "status": "200"}
        # ... and one scrape, whichever worker serves it, counts what both answered.
        assert scraped(base_url, "diarybridge_http_requests_total", labels) == sum(by_pid.values())


def control_socket_of(log_path: Path, process: subprocess.Popen[str]) -> Path:
    """Where the instance's master says its control socket listens."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        found = re.search(r"Control socket listening at (\S+)", log_path.read_text())
        if found:
            return Path(found.group(1))
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()}")
        time.sleep(0.2)
    pytest.fail(f"no control socket in {STARTUP_SECONDS}s:\n{log_path.read_text()}")


def master_pid_behind(socket_path: Path) -> int:
    """The pid of the gunicorn master answering on `socket_path` (gunicornc's `show stats`)."""
    gunicornc = Path(gunicorn_executable()).with_name("gunicornc")
    shown = subprocess.run(
        [str(gunicornc), "-s", str(socket_path), "-c", "show stats", "-j"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    pid: int = json.loads(shown.stdout)["pid"]
    return pid


def test_two_instances_on_one_machine_keep_their_own_control_sockets(tmp_path: Path) -> None:
    home = tmp_path / "home"  # one user: the same HOME, where gunicorn's default socket lives
    with contextlib.ExitStack() as stack:
        instances = []
        for kind in ("dockerfile", "serve"):  # started at once, the way a second deploy would
            port = free_port()
            env = instance_env(tmp_path / kind, HOME=str(home), DIARYBRIDGE_WORKERS="1")
            (tmp_path / kind).mkdir()
            log_path = tmp_path / kind / "gunicorn.log"
            process = stack.enter_context(running(command_for(kind, port), env, log_path))
            instances.append((f"http://127.0.0.1:{port}", process, log_path))
        sockets = []
        for base_url, process, log_path in instances:
            assert wait_for(f"{base_url}/healthz", process, log_path).status_code == 200
            sockets.append(control_socket_of(log_path, process))
        assert sockets[0] != sockets[1]
        for (_, process, _), socket_path in zip(instances, sockets, strict=True):
            assert master_pid_behind(socket_path) == process.pid  # each answers for itself

        first, second = instances
        first[1].send_signal(signal.SIGTERM)
        first[1].wait(timeout=15)
        assert not sockets[0].exists()  # the stopped instance cleaned up its own ...
        assert master_pid_behind(sockets[1]) == second[1].pid  # ... and only its own


@pytest.mark.parametrize("kind", ["serve", "dockerfile"])
def test_several_web_workers_leave_delivery_to_one_process_of_its_own(
    tmp_path: Path, kind: str
) -> None:
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    env = instance_env(
        tmp_path,
        DIARYBRIDGE_WORKERS="2",
        # Nothing is queued, so the worker never calls it: any URL will do.
        DIARYBRIDGE_FHIR_BASE_URL="http://127.0.0.1:9/fhir",
        DIARYBRIDGE_LOG_FORMAT="text",
    )
    with running(command_for(kind, port), env, log_path) as process:
        wait_for(f"http://127.0.0.1:{port}/healthz", process, log_path)
        deadline = time.monotonic() + STARTUP_SECONDS
        while "sync worker" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # a thread in a web worker, if any, would have said so by now
        text = log_path.read_text()
        web = set(re.findall(r"Booting worker with pid: (\d+)", text))
        delivery = re.findall(r"sync worker [^:\s]+:(\d+):\d+ started", text)
        assert len(web) == 2, text
        assert len(delivery) == 1, text  # one delivery worker for the instance ...
        assert delivery[0] not in web  # ... and not inside a process that answers requests
    with pytest.raises(ProcessLookupError):  # stopped with the instance, not left behind
        os.kill(int(delivery[0]), 0)

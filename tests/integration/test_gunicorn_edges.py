"""Through the real server (the Dockerfile's gunicorn): a chunked body over the limit is 413,
and an access log, if an operator turns one on, carries no patient ids or search values."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.api.samples import DIARY_ENTRY, diary
from tests.conftest import KEYS, headers
from tests.integration.test_gunicorn import (
    ROOT,
    bound_to,
    dockerfile_command,
    free_port,
    gunicorn_executable,
    wait_for,
)

LIMIT = 64 * 1024  # small, so the socket buffers take a refused body whole and no reset races
MARKER = "zq7Gunicorn58"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("chunked")
    port = free_port()
    command = bound_to(dockerfile_command(), f"127.0.0.1:{port}")
    command[0] = gunicorn_executable()
    command.insert(1, "--access-logfile=-")  # an operator's choice: raw request lines
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp / 'gunicorn.sqlite3'}",
        "DIARYBRIDGE_API_KEYS": json.dumps(list(KEYS.values())),
        "DIARYBRIDGE_MAX_BODY_BYTES": str(LIMIT),
        "DIARYBRIDGE_WORKER_IN_PROCESS": "false",
    }
    env.pop("DIARYBRIDGE_FHIR_BASE_URL", None)
    log_path = tmp / "gunicorn.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, text=True
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(f"{url}/healthz", process, log_path)
            yield url, log_path
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def chunks(body: bytes, size: int = 8192) -> Iterator[bytes]:
    """A generator body: requests sends it with Transfer-Encoding: chunked, no length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def post_chunked(url: str, body: bytes, content_type: str) -> requests.Response:
    return requests.post(
        url,
        data=chunks(body),
        headers={**headers("diary_app"), "Content-Type": content_type},
        timeout=30,
    )


def test_a_padded_chunked_body_over_the_limit_is_413(base_url: str) -> None:
    body = json.dumps(DIARY_ENTRY).encode() + b" " * (2 * LIMIT)
    response = post_chunked(f"{base_url}/convert/diary-entries", body, "application/json")
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "request_entity_too_large"


def test_chunked_ndjson_over_the_limit_is_413_not_fewer_records(base_url: str) -> None:
    bundle = requests.post(
        f"{base_url}/convert/diary-entries",
        json=[diary(entry_id=f"e{i}") for i in range(3)],
        headers=headers("diary_app"),
        timeout=30,
    ).json()
    lines = b"".join(json.dumps(e["resource"]).encode() + b"\n" for e in bundle["entry"])
    body = lines * (LIMIT // len(lines) + 2)
    response = post_chunked(f"{base_url}/convert/fhir", body, "application/fhir+ndjson")
    assert response.status_code == 413, response.text


def test_a_chunked_body_under_the_limit_is_read_whole(base_url: str) -> None:
    entries = [diary(entry_id=f"e{i}", note=None) for i in range(5)]
    body = json.dumps(entries).encode()
    assert len(body) < LIMIT
    response = post_chunked(f"{base_url}/convert/diary-entries", body, "application/json")
    assert response.status_code == 200, response.text
    ids = {e["resource"]["identifier"][0]["value"].split("/")[1] for e in response.json()["entry"]}
    assert ids == {f"e{i}" for i in range(5)}


@pytest.fixture
def base_url(served: tuple[str, Path]) -> str:
    return served[0]


def test_access_lines_carry_no_patient_ids_or_search_values(served: tuple[str, Path]) -> None:
    url, log_path = served
    response = requests.get(
        f"{url}/patients/{MARKER}/observations?code={MARKER}",
        headers=headers("batch"),
        timeout=30,
    )
    assert response.status_code == 503  # no FHIR server here; the request line was written
    requests.get(f"{url}/healthz?probe={MARKER}", timeout=30)
    time.sleep(0.5)  # let the workers' lines reach the file
    text = log_path.read_text()
    assert "/patients/<patient>/observations" in text  # our own access line, by route rule
    assert MARKER not in text

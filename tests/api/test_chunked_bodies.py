"""A body over the limit is 413 whatever its framing: a chunked one is refused, never cut."""

from __future__ import annotations

import io
import json
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.app import create_app
from service.config import Settings
from tests.api.contract import ContractClient
from tests.api.samples import DIARY_ENTRY, diary
from tests.conftest import headers, make_env

MIB = 1024 * 1024


def chunked(client: FlaskClient, path: str, body: bytes, content_type: str) -> Any:
    """POST `body` as a server hands on a chunked request: no Content-Length, a terminated
    stream (what gunicorn and werkzeug's server set for Transfer-Encoding: chunked)."""
    return client.post(
        path,
        input_stream=io.BytesIO(body),
        headers={
            **headers("diary_app"),
            "Content-Type": content_type,
            "Transfer-Encoding": "chunked",
        },
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_a_valid_entry_padded_past_the_limit_is_413_not_accepted(client: FlaskClient) -> None:
    body = json.dumps(DIARY_ENTRY).encode() + b" " * (6 * MIB)
    response = chunked(client, "/convert/diary-entries", body, "application/json")
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert response.json["error"] == "request_entity_too_large"


def test_a_chunked_array_over_the_limit_is_413_not_malformed_json(client: FlaskClient) -> None:
    one = json.dumps(diary(note="x" * 1900)).encode()
    body = b"[" + b",".join([one] * (7 * MIB // len(one))) + b"]"
    assert len(body) > 6 * MIB
    response = chunked(client, "/sync/diary-entries", body, "application/json")
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE


@pytest.fixture
def small(tmp_path: Path) -> FlaskClient:
    """An app whose limit is 4 KiB, so the edge of the limit is cheap to test."""
    app: Flask = create_app(
        Settings.from_env(make_env(tmp_path, DIARYBRIDGE_MAX_BODY_BYTES="4096"))
    )
    app.test_client_class = ContractClient
    return app.test_client()


def ndjson_of(client: FlaskClient, size: int) -> tuple[bytes, int]:
    """NDJSON of our resources, cut to whole lines under `size` bytes, and its line count."""
    converted = client.post(
        "/convert/diary-entries?bundle=collection",
        json=[diary(entry_id=f"e{i}") for i in range(3)],
        headers=headers("diary_app"),
    )
    lines = [json.dumps(e["resource"]).encode() + b"\n" for e in converted.json["entry"]]
    body = b""
    for line in lines * 50:
        if len(body) + len(line) > size:
            break
        body += line
    return body, body.count(b"\n")


def test_ndjson_cut_at_a_line_end_by_the_limit_is_413_not_fewer_records(
    small: FlaskClient, client: FlaskClient
) -> None:
    body, _ = ndjson_of(client, 8192)
    assert len(body) > 4096
    response = chunked(small, "/convert/fhir", body, "application/fhir+ndjson")
    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE


def test_a_chunked_body_of_exactly_the_limit_is_read_whole(small: FlaskClient) -> None:
    body = json.dumps(diary(note=None)).encode()
    body += b" " * (4096 - len(body))
    assert len(body) == 4096
    response = chunked(small, "/convert/diary-entries", body, "application/json")
    assert response.status_code == HTTPStatus.OK, response.json
    over = chunked(small, "/convert/diary-entries", body + b" ", "application/json")
    assert over.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE


def test_a_chunked_body_under_the_limit_is_read_whole(client: FlaskClient) -> None:
    body = json.dumps([diary(entry_id=f"e{i}") for i in range(20)]).encode()
    response = chunked(client, "/convert/diary-entries", body, "application/json")
    assert response.status_code == HTTPStatus.OK, response.json
    assert len({e["resource"]["id"] for e in response.json["entry"]}) > 20

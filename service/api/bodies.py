"""Reading request bodies: the right media type or 415, valid JSON or 400."""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from flask import request

from service import json_input
from service.api.errors import ApiError

JSON_TYPES = ("application/json", "application/fhir+json")


def read_json() -> Any:
    """The body as JSON; 415 for another media type, 400 for malformed JSON."""
    if request.mimetype not in JSON_TYPES:
        raise ApiError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            f"send {' or '.join(JSON_TYPES)}, not {request.mimetype or 'no Content-Type'}",
        )
    try:
        return json_input.loads(request.get_data())
    except json_input.JsonTooDeep:
        raise  # the error table names it
    except ValueError:  # also undecodable bytes
        raise ApiError(
            HTTPStatus.BAD_REQUEST, "malformed_json", "the body is not valid JSON"
        ) from None


def read_ndjson_lines() -> Iterator[str]:
    """The body's lines, decoded as UTF-8 (Flask has already capped its size)."""
    try:
        text = request.get_data(cache=False).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(HTTPStatus.BAD_REQUEST, "malformed_body", "the body is not UTF-8") from None
    return iter(text.splitlines())

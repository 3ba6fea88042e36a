"""Reading request bodies: the right media type or 415, valid JSON or 400, over the limit 413.

Werkzeug refuses a Content-Length over MAX_CONTENT_LENGTH, but a chunked body (no length) it
only reads up to the limit and then reports the end: the rest was silently cut, so a valid
entry followed by padding was accepted, or an NDJSON body lost its records after a line end.
`_body` reads one byte past the limit, and a body that has it is refused, whatever its framing.
"""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from service import json_input
from service.api.errors import ApiError

FHIR_JSON = "application/fhir+json"
JSON_TYPES = ("application/json", FHIR_JSON)


def _body(*, cache: bool = True) -> bytes:
    """The whole body, at most the configured limit; 413 if there is more, chunked or not."""
    data = request.get_data(cache=cache)
    limit = request.max_content_length
    # With a Content-Length, werkzeug has already refused too long a body (and reading on
    # would wait for bytes the client never sends); without one the server ends the stream.
    unframed = request.content_length is None and limit is not None and len(data) >= limit
    if unframed and request.input_stream.read(1):
        raise RequestEntityTooLarge()
    return data


def read_json() -> Any:
    """The body as JSON; 415 for another media type, 400 for malformed JSON."""
    if request.mimetype not in JSON_TYPES:
        raise ApiError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            f"send {' or '.join(JSON_TYPES)}, not {request.mimetype or 'no Content-Type'}",
        )
    try:
        return json_input.loads(_body())
    except json_input.JsonTooDeep:
        raise  # the error table names it
    except ValueError:  # also undecodable bytes
        raise ApiError(
            HTTPStatus.BAD_REQUEST, "malformed_json", "the body is not valid JSON"
        ) from None


def read_ndjson_lines() -> Iterator[str]:
    """The body's lines, decoded as UTF-8 (all of it, or 413: never a cut at a line end)."""
    try:
        text = _body(cache=False).decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(HTTPStatus.BAD_REQUEST, "malformed_body", "the body is not UTF-8") from None
    return iter(text.splitlines())

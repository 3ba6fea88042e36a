"""A Flask test client that checks every answer (and every accepted request) against the spec."""

from __future__ import annotations

import io
import json
from functools import cache
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from openapi_core import Config, OpenAPI
from openapi_core.deserializing.media_types.util import json_loads, plain_loads
from openapi_core.testing import MockRequest, MockResponse

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"


@cache
def openapi() -> OpenAPI:
    """The spec, parsed and checked once."""
    # openapi-core reads only application/json as JSON by itself (other types stay bytes).
    config = Config(
        extra_media_type_deserializers={
            "application/fhir+json": json_loads,
            "application/fhir+ndjson": plain_loads,
            "application/x-ndjson": plain_loads,
            "application/openmetrics-text": plain_loads,
        }
    )
    return OpenAPI.from_file_path(str(SPEC_PATH), config=config)


class ContractClient(FlaskClient):
    """Every response must match the spec; a request the app accepted (2xx) must too."""

    def open(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        body = kwargs.get("data")
        if "json" in kwargs:
            body = json.dumps(kwargs["json"])
        if isinstance(kwargs.get("input_stream"), io.BytesIO):  # a chunked body, in tests
            body = kwargs["input_stream"].getvalue()
        response = super().open(*args, **kwargs)
        request = response.request
        content_type = request.headers.get("Content-Type", "application/json")
        mock_request = MockRequest(
            "http://127.0.0.1:8080",
            request.method,
            request.path,
            args=dict(request.args),
            headers=dict(request.headers),
            data=body.encode() if isinstance(body, str) else body,
            content_type=content_type.split(";")[0],
        )
        mock_response = MockResponse(
            response.get_data(),
            status_code=response.status_code,
            headers=dict(response.headers),
            content_type=response.mimetype,
        )
        if 200 <= response.status_code < 300:
            openapi().validate_request(mock_request)
        openapi().validate_response(mock_request, mock_response)
        return response

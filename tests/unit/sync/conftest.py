"""Each test meets its fake server afresh: limits learned by one test must not shape another."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.fhir_client import forget_limits


@pytest.fixture(autouse=True)
def _fresh_server_limits() -> Iterator[None]:
    forget_limits()
    yield
    forget_limits()

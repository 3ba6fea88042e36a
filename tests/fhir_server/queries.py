"""Small read-only questions the tests ask the FHIR server."""

from __future__ import annotations

from collections.abc import Callable

import requests

CountByIdentifier = Callable[[str, str, str], int]


def count_by_identifier(base_url: str, resource_type: str, system: str, value: str) -> int:
    """How many resources of a type carry the identifier system|value on the server."""
    response = requests.get(
        f"{base_url}/{resource_type}",
        params={"identifier": f"{system}|{value}", "_summary": "count"},
        timeout=10,
    )
    response.raise_for_status()
    total: int = response.json()["total"]
    return total

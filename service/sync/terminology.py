"""Publish our local CodeSystems to the clinic's FHIR server, idempotently.

Each CodeSystem goes to a deterministic id (uuid5 of url|version: servers such as Medplum take
only uuid ids), so a second run finds it: when the server's copy already says what ours says,
nothing is written (no new version); otherwise it is PUT (update-as-create).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from mappings.terminology import code_systems
from service.fhir_client import FhirClient
from service.fhir_client.errors import Gone, NotFound

JSON = dict[str, Any]

UNCHANGED = "unchanged"
WRITTEN = "written"


@dataclass(frozen=True)
class Published:
    """What happened to one CodeSystem: its url, version, server id and outcome."""

    url: str
    version: str
    server_id: str
    outcome: str  # unchanged | written


def server_id(code_system: JSON) -> str:
    """The id a CodeSystem gets on the clinic's server: uuid5 of url|version."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{code_system['url']}|{code_system['version']}"))


def _same(stored: JSON, ours: JSON) -> bool:
    # The server adds meta (and may add text); what we say is every other element of ours.
    return all(stored.get(k) == v for k, v in ours.items() if k not in ("id", "meta"))


def publish_terminology(client: FhirClient) -> list[Published]:
    """Write every local CodeSystem that the server lacks or holds differently."""
    results: list[Published] = []
    for cs in code_systems():
        resource = {**cs, "id": server_id(cs)}
        try:
            stored: JSON | None = client.read("CodeSystem", resource["id"])
        except (NotFound, Gone):
            stored = None
        if stored is not None and _same(stored, resource):
            outcome = UNCHANGED
        else:
            client.update(resource)
            outcome = WRITTEN
        results.append(Published(cs["url"], cs["version"], resource["id"], outcome))
    return results

"""The pull's page size: configured, else the largest the server allows (learned once)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from service.config import ConfigError, FhirServerSettings
from service.fhir_client import NO_RETRY, FhirClient
from service.schemas import RecordKind
from service.sync.pull import MAX_PAGE_SIZE, PullWindow, page_size, pull_records
from service.sync.target import make_client
from tests.unit.sync.test_sync_push import BASE


def test_the_setting_is_read_and_checked() -> None:
    assert FhirServerSettings.from_env({}).pull_page_size == 0  # 0: the server's largest
    env = {"DIARYBRIDGE_FHIR_BASE_URL": BASE, "DIARYBRIDGE_PULL_PAGE_SIZE": "250"}
    settings = FhirServerSettings.from_env(env)
    assert settings.pull_page_size == 250
    assert page_size(make_client(settings)) == 250
    with pytest.raises(ConfigError, match="DIARYBRIDGE_PULL_PAGE_SIZE"):
        FhirServerSettings.from_env({"DIARYBRIDGE_PULL_PAGE_SIZE": "-1"})


def page(n: int, start: int, next_url: str | None) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {
                "resource": {"resourceType": "Observation", "id": f"o{start + k}"},
                "search": {"mode": "match"},
            }
            for k in range(n)
        ],
    }
    if next_url:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


@responses.activate
def test_a_server_that_trims_the_count_is_asked_for_its_cap_from_then_on() -> None:
    client = FhirClient(BASE, retry=NO_RETRY)
    counts: list[str] = []

    def search(request: Any) -> tuple[int, dict, str]:
        query = parse_qs(urlsplit(request.url).query)
        counts.append(query.get("_count", ["-"])[0])
        if "_offset" in query:
            return 200, {}, json.dumps(page(1, 300, None))
        return 200, {}, json.dumps(page(300, 0, f"{request.url}&_offset=300"))

    responses.add_callback(responses.GET, f"{BASE}/Observation", callback=search)
    responses.add_callback(responses.GET, f"{BASE}/MedicationAdministration", callback=search)
    assert page_size(client) == MAX_PAGE_SIZE
    pull_records(client, "Patient/p1", RecordKind.DIARY_ENTRY, PullWindow())
    assert counts[0] == str(MAX_PAGE_SIZE)
    assert page_size(client) == 300  # the first page held 300 and had a next link
    assert counts[-2] == "300"  # the second resource type was already asked for 300

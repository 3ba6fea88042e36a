"""The pass-through search pages as standard clients page: absolute links, an honest total.

A FHIR client (fhirclient, smart-fetch...) follows `link[next]` exactly as given and reads
`total`. The FHIR server is faked with `responses` to control its paging: pages of 3, a total,
and (in one case) another patient's Observation slipped into the first page.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from flask.testing import FlaskClient

from service.app import create_app
from service.config import Settings
from tests.api.contract import ContractClient
from tests.conftest import headers, make_env

BASE = "https://fhir.clinic.test/fhir"
PATIENT, OTHER = "synthetic-page-a", "synthetic-page-b"
PAGE = 3


def observation(n: int, patient: str = PATIENT) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"obs-{patient}-{n}",
        "status": "final",
        "code": {"text": "fatigue"},
        "subject": {"reference": f"Patient/{patient}"},
        "valueInteger": n % 11,
    }


class PagingServer:
    """Observation search in pages of 3 with `_offset` next links, as SEKMET pages."""

    def __init__(self, resources: list[dict[str, Any]], total: int | None) -> None:
        self.resources, self.total = resources, total

    def search(self, request: Any) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlsplit(request.url).query)
        offset = int(query.get("_offset", ["0"])[0])
        page = self.resources[offset : offset + PAGE]
        links = [{"relation": "self", "url": request.url}]
        if offset + PAGE < len(self.resources):
            nxt = f"{BASE}/Observation?subject=Patient/{PATIENT}&_offset={offset + PAGE}"
            links.append({"relation": "next", "url": nxt})
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "link": links}
        if self.total is not None:
            bundle["total"] = self.total
        bundle["entry"] = [
            {"fullUrl": f"{BASE}/Observation/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in page
        ]
        return HTTPStatus.OK, {"Content-Type": "application/fhir+json"}, json.dumps(bundle)


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    app = create_app(Settings.from_env(make_env(tmp_path, DIARYBRIDGE_FHIR_BASE_URL=BASE)))
    app.test_client_class = ContractClient  # every answer checked against openapi.yaml
    return app.test_client()


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def serve(rsps: responses.RequestsMock, resources: list[dict[str, Any]], total: int | None) -> None:
    rsps.add_callback(responses.GET, f"{BASE}/Observation", PagingServer(resources, total).search)


def follow(client: FlaskClient, first: str) -> list[dict[str, Any]]:
    """Every page, following `next` exactly as given (as fhirclient's Bundle paging does)."""
    pages, url = [], first
    while url:
        answer = client.get(url, headers=headers("clinician"))
        assert answer.status_code == HTTPStatus.OK, answer.get_data(as_text=True)
        page = answer.json
        pages.append(page)
        links = {link["relation"]: link["url"] for link in page["link"]}
        assert links["self"] == url if url.startswith("http") else links["self"].endswith(url)
        url = links.get("next")
        assert len(pages) <= 10, "paging never ends"
    return pages


def test_links_are_absolute_and_every_entry_comes_once_with_the_servers_total(
    client: FlaskClient, rsps: responses.RequestsMock
) -> None:
    mine = [observation(n) for n in range(8)]
    serve(rsps, mine, total=8)
    pages = follow(client, f"/patients/{PATIENT}/observations?_count={PAGE}")
    assert len(pages) == 3
    for page in pages:
        for link in page["link"]:
            # Ours (the test client's host), never the FHIR server's; the token stays opaque.
            assert link["url"].startswith("http://localhost/patients/"), link
            assert BASE not in link["url"] and "fhir.clinic.test" not in link["url"]
        assert page["total"] == 8
    seen = [e["resource"]["id"] for page in pages for e in page["entry"]]
    assert seen == [r["id"] for r in mine]  # every entry once, in order


def test_no_total_is_claimed_where_the_server_gave_none(
    client: FlaskClient, rsps: responses.RequestsMock
) -> None:
    serve(rsps, [observation(n) for n in range(4)], total=None)
    pages = follow(client, f"/patients/{PATIENT}/observations")
    assert [len(p["entry"]) for p in pages] == [3, 1]
    assert all("total" not in page for page in pages)


def test_once_another_patients_entry_was_left_out_no_page_claims_the_servers_total(
    client: FlaskClient, rsps: responses.RequestsMock
) -> None:
    # A server that let another patient's Observation into this patient's search: its total
    # counts it, the pages will not show it, so the total is not what a client gets.
    resources = [observation(0), observation(0, OTHER), *(observation(n) for n in range(1, 6))]
    serve(rsps, resources, total=len(resources))
    pages = follow(client, f"/patients/{PATIENT}/observations")
    assert len(pages) == 3
    assert all("total" not in page for page in pages)  # the clean later pages included
    seen = [e["resource"]["id"] for page in pages for e in page["entry"]]
    assert seen == [f"obs-{PATIENT}-{n}" for n in range(6)]
    assert OTHER not in json.dumps(pages)


def test_a_tampered_token_is_refused(client: FlaskClient, rsps: responses.RequestsMock) -> None:
    serve(rsps, [observation(n) for n in range(4)], total=4)
    first = client.get(f"/patients/{PATIENT}/observations", headers=headers("clinician")).json
    nxt = next(link["url"] for link in first["link"] if link["relation"] == "next")
    token = parse_qs(urlsplit(nxt).query)["_page"][0]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    answer = client.get(
        f"/patients/{PATIENT}/observations?_page={forged}", headers=headers("clinician")
    )
    assert answer.status_code == HTTPStatus.BAD_REQUEST

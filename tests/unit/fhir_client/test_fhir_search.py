"""Search paging: follows link[next] lazily, stops at limit, detects loops and foreign hosts."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from fhir_fakes import BASE, observation

from service.fhir_client import FhirClient, InvalidServerResponse, PagingLoop, forget_limits


def page(
    ids: list[str], next_url: str | None = None, extra: list[Any] | None = None
) -> dict[str, Any]:
    """A searchset Bundle with the given Observation ids and an optional next link."""
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [{"relation": "self", "url": f"{BASE}/Observation"}],
        "entry": [{"resource": observation(i), "search": {"mode": "match"}} for i in ids]
        + (extra or []),
    }
    if next_url is not None:
        bundle["link"].append({"relation": "next", "url": next_url})
    return bundle


def test_follows_next_links_across_pages(rsps: responses.RequestsMock, client: FhirClient) -> None:
    rsps.get(
        f"{BASE}/Observation?subject=Patient%2Fp1&_count=2",
        json=page(["a", "b"], f"{BASE}/Observation?_page=2"),
    )
    rsps.get(f"{BASE}/Observation?_page=2", json=page(["c", "d"], f"{BASE}/Observation?_page=3"))
    rsps.get(f"{BASE}/Observation?_page=3", json=page(["e"]))

    ids = [r["id"] for r in client.search("Observation", {"subject": "Patient/p1"}, page_size=2)]

    assert ids == ["a", "b", "c", "d", "e"]
    assert len(rsps.calls) == 3


def test_a_page_trimmed_below_the_asked_size_teaches_the_servers_cap(
    rsps: responses.RequestsMock, client: FhirClient
) -> None:
    forget_limits()
    rsps.get(
        f"{BASE}/Observation?_count=1000", json=page(["a", "b"], f"{BASE}/Observation?_page=2")
    )
    rsps.get(f"{BASE}/Observation?_page=2", json=page(["c"]))
    assert client.limits.page_size is None
    assert [r["id"] for r in client.search("Observation", page_size=1000)] == ["a", "b", "c"]
    assert client.limits.page_size == 2  # a full first page: the server's largest
    assert FhirClient(BASE).limits.page_size == 2  # kept for the server, not the client
    forget_limits()


def test_a_short_last_page_teaches_nothing(
    rsps: responses.RequestsMock, client: FhirClient
) -> None:
    forget_limits()
    rsps.get(f"{BASE}/Observation?_count=1000", json=page(["a", "b"]))
    assert len(list(client.search("Observation", page_size=1000))) == 2
    assert client.limits.page_size is None
    forget_limits()


def test_search_is_lazy_and_limit_stops_fetching(
    rsps: responses.RequestsMock, client: FhirClient
) -> None:
    rsps.get(f"{BASE}/Observation", json=page(["a", "b"], f"{BASE}/Observation?_page=2"))
    rsps.get(f"{BASE}/Observation?_page=2", json=page(["c", "d"], f"{BASE}/Observation?_page=3"))
    rsps.get(f"{BASE}/Observation?_page=3", json=page(["e"]))

    results = client.search("Observation", limit=3)
    assert len(rsps.calls) == 0  # nothing fetched until iterated
    assert next(results)["id"] == "a"
    assert len(rsps.calls) == 1
    assert [r["id"] for r in results] == ["b", "c"]
    assert len(rsps.calls) == 2  # page 3 never requested


def test_relative_next_link_is_resolved(rsps: responses.RequestsMock, client: FhirClient) -> None:
    rsps.get(f"{BASE}/Observation", json=page(["a"], "Observation?_page=2"))
    rsps.get(f"{BASE}/Observation?_page=2", json=page(["b"]))

    assert [r["id"] for r in client.search("Observation")] == ["a", "b"]


def test_next_link_that_loops_raises(rsps: responses.RequestsMock, client: FhirClient) -> None:
    rsps.get(f"{BASE}/Observation", json=page(["a"], f"{BASE}/Observation?_page=2"))
    rsps.get(f"{BASE}/Observation?_page=2", json=page(["b"], f"{BASE}/Observation?_page=3"))
    rsps.get(f"{BASE}/Observation?_page=3", json=page(["c"], f"{BASE}/Observation?_page=2"))

    seen: list[str] = []
    with pytest.raises(PagingLoop):
        for resource in client.search("Observation"):
            seen.append(resource["id"])

    assert seen == ["a", "b", "c"]
    assert len(rsps.calls) == 3  # the looping page is not fetched again


def test_next_link_to_another_host_is_refused(
    rsps: responses.RequestsMock, client: FhirClient
) -> None:
    rsps.get(f"{BASE}/Observation", json=page(["a"], "https://evil.test/fhir/Observation?p=2"))

    with pytest.raises(InvalidServerResponse, match="different host"):
        list(client.search("Observation"))
    assert len(rsps.calls) == 1


def test_included_and_outcome_entries_are_not_matches(
    rsps: responses.RequestsMock, client: FhirClient
) -> None:
    extra = [
        {"resource": {"resourceType": "Patient", "id": "p1"}, "search": {"mode": "include"}},
        {
            "resource": {"resourceType": "OperationOutcome", "issue": []},
            "search": {"mode": "outcome"},
        },
    ]
    rsps.get(f"{BASE}/Observation", json=page(["a"], extra=extra))

    assert [r["id"] for r in client.search("Observation")] == ["a"]
    pages = list(client.search_pages("Observation", {"_include": "Observation:subject"}))
    assert len(pages[0]["entry"]) == 3


def test_search_requires_a_searchset(rsps: responses.RequestsMock, client: FhirClient) -> None:
    rsps.get(f"{BASE}/Observation", json={"resourceType": "Bundle", "type": "collection"})

    with pytest.raises(InvalidServerResponse, match="collection"):
        list(client.search("Observation"))


def test_repeated_parameters_are_sent(rsps: responses.RequestsMock, client: FhirClient) -> None:
    rsps.get(f"{BASE}/Observation", json=page([]))

    list(client.search("Observation", [("date", "ge2026-01-01"), ("date", "lt2026-02-01")]))

    query = parse_qs(urlsplit(rsps.calls[0].request.url).query)
    assert query["date"] == ["ge2026-01-01", "lt2026-02-01"]


class PagingAdapter(requests.adapters.BaseAdapter):
    """A server edge that makes pages on demand and keeps none, for measuring the client."""

    def __init__(self, pages: int, per_page: int) -> None:
        super().__init__()
        self.pages = pages
        self.per_page = per_page

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        number = int(parse_qs(urlsplit(request.url or "").query).get("_page", ["1"])[0])
        ids = [f"p{number}-{i}" for i in range(self.per_page)]
        following = f"{BASE}/Observation?_page={number + 1}" if number < self.pages else None
        response = requests.Response()
        response.status_code = 200
        response._content = json.dumps(page(ids, following)).encode()
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


def _peak_while_streaming(pages: int) -> int:
    session = requests.Session()
    session.mount("https://", PagingAdapter(pages, per_page=50))
    fhir = FhirClient(BASE, session=session)
    tracemalloc.start()
    count = sum(1 for _ in fhir.search("Observation"))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == pages * 50
    return peak


def test_memory_does_not_grow_with_pages() -> None:
    few, many = _peak_while_streaming(5), _peak_while_streaming(100)
    # Keeping pages would make 100 pages cost ~20x 5 pages; streaming keeps it about flat.
    assert many < few * 2


def test_list_values_repeat_the_parameter(rsps: responses.RequestsMock, client: FhirClient) -> None:
    rsps.get(f"{BASE}/Observation", json=page([]))

    list(client.search("Observation", {"code": ["a", "b"], "_count": 10}))

    query = parse_qs(urlsplit(rsps.calls[0].request.url).query)
    assert query == {"code": ["a", "b"], "_count": ["10"]}


@responses.activate
def test_search_continues_from_a_next_link_on_the_same_server() -> None:
    page2 = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    responses.get(f"{BASE}/Observation?_getpages=abc&_offset=2", json=page2)
    client = FhirClient(BASE)
    pages = list(client.search_pages_from(f"{BASE}/Observation?_getpages=abc&_offset=2"))
    assert pages == [page2]


def test_search_from_a_link_to_another_server_is_refused() -> None:
    client = FhirClient(BASE)
    with pytest.raises(InvalidServerResponse):
        next(client.search_pages_from("https://elsewhere.example/fhir/Observation?x=1"))


def test_every_search_page_asks_the_server_not_to_ignore_parameters(
    rsps: responses.RequestsMock, client: FhirClient
) -> None:
    # SEKMET, like the spec's default "lenient", drops a parameter it does not know and
    # answers as if unfiltered; "strict" makes that a 400 instead.
    rsps.get(f"{BASE}/Observation", json=page(["a"], f"{BASE}/Observation?_page=2"))
    rsps.get(f"{BASE}/Observation?_page=2", json=page(["b"]))
    assert [r["id"] for r in client.search("Observation", {"code": "x"})] == ["a", "b"]
    assert [c.request.headers["Prefer"] for c in rsps.calls] == ["handling=strict"] * 2
    rsps.get(f"{BASE}/Observation?code=y", json=page(["c"]))
    list(
        client.search("Observation", {"code": "y"}, limit=1, headers={"Prefer": "handling=lenient"})
    )
    assert rsps.calls[-1].request.headers["Prefer"] == "handling=lenient"  # the caller's wins

"""The use cases the views call, without Flask: the observations search and its page tokens,
a request's outcomes in one read, and the sync worker's freedom from the web framework."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from service import store
from service.fhir_client import BadRequest
from service.fhir_client.outcome import OperationOutcome, OutcomeIssue
from service.store import AcceptItem, SchemaGate, make_engine, make_session_factory
from service.sync.outcomes import request_outcomes
from service.sync.search import (
    BadPageToken,
    SearchRefused,
    page_token,
    page_url,
    search_observations,
    searchset,
)

KEY = b"k" * 32
PATIENT = "Patient/a"
NEXT = "http://fhir.test/Observation?_getpages=abc&_getpagesoffset=2"


def observation(subject: str) -> dict[str, Any]:
    return {"resource": {"resourceType": "Observation", "subject": {"reference": subject}}}


class FakeClient:
    """Answers every search with one given Bundle; remembers what it was asked."""

    def __init__(self, bundle: dict[str, Any] | Exception) -> None:
        self.bundle = bundle
        self.asked: list[tuple[str, Any]] = []

    def _pages(self) -> Iterator[dict[str, Any]]:
        if isinstance(self.bundle, Exception):
            raise self.bundle
        yield self.bundle

    def search_pages(
        self, resource_type: str, params: Any, request_id: str | None = None
    ) -> Iterator[dict[str, Any]]:
        self.asked.append((resource_type, list(params)))
        return self._pages()

    def search_pages_from(
        self, url: str, request_id: str | None = None
    ) -> Iterator[dict[str, Any]]:
        self.asked.append(("url", url))
        return self._pages()


def search(client: FakeClient, **kwargs: Any) -> Any:
    return search_observations(client, KEY, PATIENT, [("code", "x")], **kwargs)  # type: ignore[arg-type]


def test_a_page_token_carries_its_url_and_only_this_key_reads_it() -> None:
    token = page_token(KEY, NEXT, dropped=True)
    assert page_url(KEY, token) == (NEXT, True)
    assert page_url(KEY, page_token(KEY, NEXT)) == (NEXT, False)
    with pytest.raises(BadPageToken):
        page_url(b"o" * 32, token)
    with pytest.raises(BadPageToken):
        page_url(KEY, "not-a-token")


def test_the_subject_is_ours_and_another_patients_entries_never_go_out() -> None:
    bundle = {
        "total": 3,
        "entry": [observation(PATIENT), observation("Patient/b"), observation(PATIENT)],
        "link": [{"relation": "next", "url": NEXT}],
    }
    client = FakeClient(bundle)
    page = search(client)
    assert client.asked == [("Observation", [("subject", PATIENT), ("code", "x")])]
    assert [e["resource"]["subject"]["reference"] for e in page.entries] == [PATIENT] * 2
    # The server counted the left-out entry: no total is claimed, and later pages know it.
    assert page.total is None
    assert page.next_token is not None
    assert page_url(KEY, page.next_token) == (NEXT, True)


def test_a_token_continues_the_search_it_names_and_keeps_what_it_knew() -> None:
    client = FakeClient({"total": 9, "entry": [observation(PATIENT)]})
    page = search(client, token=page_token(KEY, NEXT, dropped=True))
    assert client.asked == [("url", NEXT)]
    assert page.total is None and page.next_token is None
    whole = search(FakeClient({"total": 9, "entry": [observation(PATIENT)]}))
    assert whole.total == 9


def test_a_refused_search_names_where_and_why_and_diagnostics_only_for_operators() -> None:
    issue = OutcomeIssue("error", "invalid", diagnostics="bad code 'x'", expression=("code",))
    refusal = BadRequest(400, method="GET", path="Observation", outcome=OperationOutcome((issue,)))
    with pytest.raises(SearchRefused) as patient_app:
        search(FakeClient(refusal))
    assert patient_app.value.problems == [("code", "error: invalid")]
    with pytest.raises(SearchRefused) as operator:
        search(FakeClient(refusal), operator=True)
    field, text = operator.value.problems[0]
    assert field == "code" and text.startswith("error: invalid (") and "bad code" in text


def test_the_searchset_bundle_has_our_links_and_the_total_only_when_true() -> None:
    page = search(FakeClient({"total": 1, "entry": [observation(PATIENT)]}))
    answer = searchset(page, "https://us/self", "https://us/next")
    assert answer["resourceType"] == "Bundle" and answer["type"] == "searchset"
    assert answer["link"] == [
        {"relation": "self", "url": "https://us/self"},
        {"relation": "next", "url": "https://us/next"},
    ]
    assert answer["total"] == 1 and answer["entry"] == page.entries
    assert "total" not in searchset(search(FakeClient({"entry": []})), "https://us/self", None)


def test_the_sync_worker_imports_no_flask() -> None:
    code = (
        "import sys, service.sync.worker, service.sync.runtime, service.sync.deliver, "
        "service.sync.requests, service.sync.search, service.sync.pages; "
        "sys.exit(1 if 'flask' in sys.modules else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("records", [1, 40])
def test_a_requests_outcomes_are_read_in_a_fixed_number_of_queries(
    tmp_path: Path, records: int
) -> None:
    # The answer of POST /sync/* reads every record's outcome at once, never one per record.
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    SchemaGate(engine).ensure()
    sessions = make_session_factory(engine)
    items = [
        AcceptItem("app", "diary-entry", f"e{i}", PATIENT, {"entry_id": f"e{i}"})
        for i in range(records)
    ]
    with sessions.begin() as session:
        request_id = store.accept(session, "app", items)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    outcomes = request_outcomes(sessions, request_id)
    assert sorted(o.source_id for o in outcomes) == sorted(f"e{i}" for i in range(records))
    assert all(o.outcome == "queued" for o in outcomes)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) <= 2

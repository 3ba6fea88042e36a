"""A system caller's record ids are the app's: a first blind write must not land on another patient.

With the ledger lost (or a second instance), a system caller reusing a record id for another
patient plans the same uuid5 ids and identifiers as the first patient's record. Before the
first write of resources the ledger never sent, one look-up per chunk finds which exist; a
record any of whose resources has another subject fails with `foreign_subject`, nothing sent.
"""

from __future__ import annotations

import dataclasses
import json
import re
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from service.fhir_client import NO_RETRY, FhirClient
from service.sync.push import Outcome, Pusher
from tests.unit.mappings.samples import ENTRY
from tests.unit.sync.test_sync_push import BASE, capability, claimed, transaction_response

OTHER = {"reference": "Patient/synthetic-mg-002"}
OURS = {"reference": "Patient/synthetic-mg-001"}  # claimed()'s patient


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


class Server:
    """Answers the look-up batch with one resource at the first planned id, and writes."""

    def __init__(self, subject: dict[str, str] | None) -> None:
        self.subject = subject
        self.lookups: list[list[str]] = []
        self.writes = 0

    def post(self, request: Any) -> tuple[int, dict, str]:
        bundle = json.loads(request.body)
        if bundle["type"] == "batch" and all(
            e["request"]["method"] == "GET" for e in bundle["entry"]
        ):
            urls = [e["request"]["url"] for e in bundle["entry"]]
            self.lookups.append(urls)
            entries = []
            for url in urls:
                rtype, query = url.split("?", 1)
                ids = parse_qs(query)["_id"][0].split(",")
                found = []
                if self.subject is not None and rtype == "Observation":
                    found = [{"resourceType": rtype, "id": ids[0], "subject": self.subject}]
                entries.append({"response": {"status": "200 OK"}, "resource": searchset(found)})
            reply = {"resourceType": "Bundle", "type": "batch-response", "entry": entries}
            return HTTPStatus.OK, {}, json.dumps(reply)
        self.writes += 1
        return transaction_response(request)


@pytest.fixture
def client() -> FhirClient:
    return FhirClient(BASE, retry=NO_RETRY)


def serve(subject: dict[str, str] | None, **caps: bool) -> Server:
    server = Server(subject)
    responses.get(f"{BASE}/metadata", json=capability(**caps))
    responses.add_callback(responses.POST, BASE, callback=server.post)
    return server


@responses.activate
def test_a_planned_id_held_by_another_patient_fails_the_record_and_sends_nothing(
    client: FhirClient,
) -> None:
    server = serve(OTHER)
    (delivery,) = Pusher(client).push([claimed()])
    assert delivery.outcome is Outcome.FAILED
    assert delivery.error is not None and delivery.error.code == "foreign_subject"
    assert "synthetic-mg-002" not in json.dumps(dataclasses.asdict(delivery.error))
    assert delivery.resources == ()
    assert server.writes == 0
    (urls,) = server.lookups  # one request for the chunk, one search per type in it
    assert sorted(u.split("?")[0] for u in urls) == ["MedicationAdministration", "Observation"]
    assert all("_elements=identifier,subject" in u for u in urls)


@responses.activate
def test_one_foreign_record_does_not_hold_back_the_others_of_its_chunk(
    client: FhirClient,
) -> None:
    server = serve(OTHER)
    other = claimed(dataclasses.replace(ENTRY, entry_id="another-id"))
    deliveries = Pusher(client).push([claimed(), other])
    # The server "holds" only the first planned id of the look-up: the first record's.
    assert [d.outcome for d in deliveries] == [Outcome.FAILED, Outcome.CREATED]
    assert server.writes == 1 and len(server.lookups) == 1


@responses.activate
def test_the_same_patients_resource_is_written_over_as_before(client: FhirClient) -> None:
    server = serve(OURS)
    (delivery,) = Pusher(client).push([claimed()])
    assert delivery.outcome is Outcome.CREATED
    assert server.writes == 1 and len(server.lookups) == 1


@responses.activate
def test_patient_scoped_records_need_no_look_up(client: FhirClient) -> None:
    server = serve(OTHER)
    scoped = dataclasses.replace(claimed(), patient_scope="Patient/synthetic-mg-001")
    (delivery,) = Pusher(client).push([scoped])
    assert delivery.outcome is Outcome.CREATED
    assert server.lookups == [] and server.writes == 1
    assert len(responses.calls) == 2  # metadata + the transaction


@responses.activate
def test_resources_the_ledger_sent_before_need_no_look_up(client: FhirClient) -> None:
    server = serve(None)
    (first,) = Pusher(client).push([claimed()])
    server.subject = OTHER  # were a look-up made now, it would refuse
    changed = dataclasses.replace(ENTRY, fatigue=(ENTRY.fatigue or 0) + 1)
    (again,) = Pusher(client).push([claimed(changed, first.resources)])
    assert again.outcome is Outcome.UPDATED
    assert len(server.lookups) == 1  # the first push's only


@responses.activate
def test_conditional_update_without_batch_looks_up_identifiers_per_type(
    client: FhirClient,
) -> None:
    responses.get(
        f"{BASE}/metadata", json=capability(transaction=False, batch=False, update_create=False)
    )
    searched: list[str] = []

    def search(request: Any) -> tuple[int, dict, str]:
        searched.append(request.url)
        query = parse_qs(urlsplit(request.url).query)
        rtype = urlsplit(request.url).path.rsplit("/", 1)[-1]
        system, _, value = query["identifier"][0].split(",")[0].partition("|")
        found = []
        if rtype == "Observation":
            identifier = {"system": system, "value": value.replace("\\", "")}
            found = [
                {"resourceType": rtype, "id": "x", "identifier": [identifier], "subject": OTHER}
            ]
        return HTTPStatus.OK, {}, json.dumps(searchset(found))

    pattern = re.compile(f"{BASE}/(Observation|MedicationAdministration)")
    responses.add_callback(responses.GET, pattern, callback=search)
    put = responses.put(re.compile(f"{BASE}/.*"), status=HTTPStatus.CREATED)
    (delivery,) = Pusher(client).push([claimed()])
    assert delivery.outcome is Outcome.FAILED
    assert delivery.error is not None and delivery.error.code == "foreign_subject"
    assert put.call_count == 0
    assert len(searched) == 2  # one search per type: the server has no batch

"""A conditional create answered 200: the server kept a resource the ledger did not know.

Ledger lost, a second instance or a migrated database: the server already holds a resource
with our identifier and did not take what we sent. The pusher must make the server hold our
content (If-Match on the version it read) or say why not; never record content it never took.
A real server gives the ordinary case (tests/integration); these cover what it will not do on
demand: another patient's resource, an edit between our read and our write, identical content.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import pytest
import responses

from mappings.records import DiaryEntry
from service.fhir_client import NO_RETRY, FhirClient
from service.sync.push import Outcome, Pusher
from tests.unit.mappings.samples import ENTRY
from tests.unit.sync.test_sync_push import BASE, capability, claimed, outcome

FATIGUE = "/fatigue"  # the identifier value of the fatigue Observation ends so


@dataclass
class Server:
    """A transaction endpoint that already holds some of our identifiers, and reads/updates."""

    held: dict[str, dict[str, Any]] = field(default_factory=dict)  # Type/id -> resource
    existing: dict[str, str] = field(default_factory=dict)  # identifier value -> Type/id
    puts: list[dict[str, Any]] = field(default_factory=list)
    refuse_put: bool = False

    def transaction(self, request: Any) -> tuple[int, dict, str]:
        bundle = json.loads(request.body)
        entries = []
        for n, e in enumerate(bundle["entry"]):
            value = e["resource"]["identifier"][0]["value"]
            assert e["request"]["method"] == "POST" and "ifNoneExist" in e["request"]
            if value in self.existing:
                location = f"{self.existing[value]}/_history/3"
                entries.append({"response": {"status": "200 OK", "location": location}})
            else:
                where = f"{e['request']['url']}/new{n}"
                self.held[where] = {**e["resource"], "id": f"new{n}", "meta": {"versionId": "1"}}
                entries.append({"response": {"status": "201 Created", "location": where}})
        body = {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
        return HTTPStatus.OK, {}, json.dumps(body)

    def read(self, request: Any) -> tuple[int, dict, str]:
        where = request.url.removeprefix(f"{BASE}/")
        return HTTPStatus.OK, {}, json.dumps(self.held[where])

    def update(self, request: Any) -> tuple[int, dict, str]:
        if self.refuse_put:
            return HTTPStatus.PRECONDITION_FAILED, {}, json.dumps(outcome("conflict", "changed"))
        body = json.loads(request.body)
        self.puts.append({"body": body, "if_match": request.headers.get("If-Match")})
        where = request.url.removeprefix(f"{BASE}/")
        self.held[where] = {**body, "meta": {"versionId": "4"}}
        return HTTPStatus.OK, {"ETag": 'W/"4"'}, json.dumps(self.held[where])


@pytest.fixture
def server() -> Server:
    fake = Server()
    responses.start()
    responses.get(f"{BASE}/metadata", json=capability())
    responses.add_callback(responses.POST, BASE, callback=fake.transaction)
    pattern = re.compile(f"{BASE}/(Observation|MedicationAdministration)/.+")
    responses.add_callback(responses.GET, pattern, callback=fake.read)
    responses.add_callback(responses.PUT, pattern, callback=fake.update)
    yield fake
    responses.stop()
    responses.reset()


def push(record: DiaryEntry = ENTRY) -> Any:
    client = FhirClient(BASE, retry=NO_RETRY)
    (delivery,) = Pusher(client, method="conditional-create").push([claimed(record)])
    return delivery


def first_push(server: Server, record: DiaryEntry = ENTRY) -> dict[str, dict[str, Any]]:
    """What a first (since forgotten) push left on the server: identifier value -> resource."""
    push(record)
    by_value = {r["identifier"][0]["value"]: r for r in server.held.values()}
    for value, resource in by_value.items():
        server.existing[value] = f"{resource['resourceType']}/{resource['id']}"
    return by_value


def test_a_200_with_other_content_is_updated_with_if_match_and_recorded(server: Server) -> None:
    before = first_push(server)
    fatigue = next(v for v in before if v.endswith(FATIGUE))
    changed = DiaryEntry(**{**ENTRY.__dict__, "fatigue": (ENTRY.fatigue or 0) + 1})

    delivery = push(changed)

    assert delivery.outcome is Outcome.UPDATED
    (put,) = server.puts  # only the resource whose content differs, and only once
    assert put["if_match"] == 'W/"1"'  # the version we read, so a newer edit is a 412
    assert put["body"]["identifier"][0]["value"] == fatigue
    assert put["body"]["valueInteger"] == changed.fatigue
    assert server.held[server.existing[fatigue]]["valueInteger"] == changed.fatigue
    state = next(s for s in delivery.resources if s.identifier_value == fatigue)
    assert (state.server_id, state.version_id) == (before[fatigue]["id"], "4")
    others = [s for s in delivery.resources if s.identifier_value != fatigue]
    assert others and all(s.version_id == "1" for s in others)  # kept as the server had them
    # What the ledger now records is what the server holds: sending it again sends nothing.
    client = FhirClient(BASE, retry=NO_RETRY)
    (again,) = Pusher(client, method="conditional-create").push(
        [claimed(changed, delivery.resources)]
    )
    assert again.outcome is Outcome.UNCHANGED and len(server.puts) == 1


def test_a_200_with_our_content_already_is_unchanged_and_nothing_is_written(
    server: Server,
) -> None:
    first_push(server)
    delivery = push()
    assert delivery.outcome is Outcome.UNCHANGED
    assert server.puts == []
    assert all(s.server_id and s.version_id == "1" for s in delivery.resources)


def test_another_patients_resource_is_never_updated(server: Server) -> None:
    before = first_push(server)
    fatigue = next(v for v in before if v.endswith(FATIGUE))
    theirs = server.held[server.existing[fatigue]]
    theirs["subject"] = {"reference": "Patient/someone-else"}
    kept = copy.deepcopy(theirs)
    changed = DiaryEntry(**{**ENTRY.__dict__, "fatigue": (ENTRY.fatigue or 0) + 1})

    delivery = push(changed)

    assert delivery.outcome is Outcome.FAILED
    assert delivery.error is not None and delivery.error.code == "foreign_subject"
    assert "someone-else" not in json.dumps(delivery.error.as_json())  # no patient in errors
    assert delivery.resources == () and delivery.server_versions is None  # no copy kept
    assert server.puts == [] and server.held[server.existing[fatigue]] == kept


def test_an_edit_between_our_read_and_our_update_is_a_conflict(server: Server) -> None:
    first_push(server)
    server.refuse_put = True
    changed = DiaryEntry(**{**ENTRY.__dict__, "fatigue": (ENTRY.fatigue or 0) + 1})

    delivery = push(changed)

    assert delivery.outcome is Outcome.CONFLICT
    assert delivery.error is not None and delivery.error.status == HTTPStatus.PRECONDITION_FAILED
    (copies,) = delivery.server_versions.values()
    assert copies["ours"]["valueInteger"] == changed.fatigue
    assert copies["version_we_last_saw"] == "1"

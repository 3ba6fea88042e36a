"""A server quirk lives in the profile alone: the planner sizes Bundles by it from the first push,
and the halving fallback never has to find it by refusal."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import responses

from mappings.records import DiaryEntry
from service.fhir_client import KNOWN_SERVERS, NO_RETRY, FhirClient, Limits, ServerQuirk
from service.fhir_client import quirks as quirks_module
from service.sync.push import Outcome, Pusher
from tests.unit.mappings.samples import ENTRY
from tests.unit.sync.test_sync_push import (
    answering_lookups,
    capability,
    claimed,
    outcome,
    transaction_response,
)

BASE = "https://fhir.clinic.test/fhir"


def served_by(software: str) -> None:
    statement = {**capability(), "software": {"name": software, "version": "1"}}
    responses.get(f"{BASE}/metadata", json=statement)


def records(count: int) -> list[Any]:
    return [claimed(DiaryEntry(**{**ENTRY.__dict__, "entry_id": f"q-{n}"})) for n in range(count)]


@responses.activate
def test_a_transaction_cap_quirk_sizes_the_first_push(monkeypatch: pytest.MonkeyPatch) -> None:
    # The whole change for "this server caps transactions at 20": one row in quirks.py.
    row = ServerQuirk("acme fhir", Limits(transaction_entries=20), why="vendor docs")
    monkeypatch.setattr(quirks_module, "KNOWN_SERVERS", (*KNOWN_SERVERS, row))
    served_by("ACME FHIR Server")
    sizes: list[int] = []

    def callback(request: Any) -> tuple[int, dict, str]:
        size = len(json.loads(request.body)["entry"])
        sizes.append(size)
        if size > 20:
            return 400, {}, json.dumps(outcome("invalid", "too many entries"))
        return transaction_response(request)

    responses.add_callback(responses.POST, BASE, callback=answering_lookups(callback))
    client = FhirClient(BASE, retry=NO_RETRY)
    pusher = Pusher(client, chunk_size=200)
    assert pusher.chunk_size == 20
    assert {d.outcome for d in pusher.push(records(4))} == {Outcome.CREATED}
    assert sizes and max(sizes) <= 20  # never refused: nothing to halve
    assert client.limits.transaction_entries is None  # known, not learned


@responses.activate
def test_medplums_conditional_cap_sends_a_big_record_alone_without_a_refusal() -> None:
    served_by("Medplum")
    transactions: list[int] = []

    def callback(request: Any) -> tuple[int, dict, str]:
        transactions.append(len(json.loads(request.body)["entry"]))
        return 400, {}, json.dumps(outcome("invalid", "too many entries"))

    def created(request: Any) -> tuple[int, dict, str]:
        body = json.loads(request.body)
        where = f"{BASE}/{body['resourceType']}/x{len(responses.calls)}/_history/1"
        return 201, {"Location": where}, json.dumps({**body, "id": "x", "meta": {"versionId": "1"}})

    responses.add_callback(responses.POST, BASE, callback=callback)
    responses.add_callback(
        responses.POST, re.compile(f"{BASE}/(Observation|MedicationAdministration)$"), created
    )
    client = FhirClient(BASE, retry=NO_RETRY)
    delivered = Pusher(client, method="conditional-create").push(records(1))
    assert [d.outcome for d in delivered] == [Outcome.CREATED]
    assert transactions == []  # the profile knew: one by one at once
    assert client.limits.conditional_entries is None

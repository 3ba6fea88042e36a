"""The pusher against a FHIR server faked with `responses`: outcomes for every error path."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import responses

from mappings.records import DiaryEntry
from service.fhir_client import NO_RETRY, FhirClient
from service.schemas import dump_record
from service.store import ClaimedEntry, ResourceState
from service.sync.push import Outcome, Pusher
from tests.unit.mappings.samples import ENTRY, INFUSION

BASE = "https://fhir.clinic.test/fhir"


def capability(
    transaction: bool = True,
    batch: bool = True,
    update_create: bool = True,
    types: tuple[str, ...] = ("Observation", "MedicationAdministration", "AdverseEvent"),
) -> dict:
    interactions = [{"code": c} for c in ("read", "create", "update", "search-type")]
    resource = {
        "interaction": interactions,
        "updateCreate": update_create,
        "conditionalCreate": True,
        "conditionalUpdate": True,
    }
    system = [{"code": "transaction"}] * transaction + [{"code": "batch"}] * batch
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "date": "2026-01-01",
        "rest": [
            {
                "mode": "server",
                "interaction": system,
                "resource": [{"type": t, **resource} for t in types],
            }
        ],
    }


def claimed(
    record: DiaryEntry = ENTRY, resources: tuple[ResourceState, ...] = (), retract: bool = False
) -> ClaimedEntry:
    return ClaimedEntry(
        ledger_id=1,
        namespace="mg-diary-app",
        kind="diary-entry",
        source_id=record.entry_id,
        patient_key="Patient/synthetic-mg-001",
        record=dump_record(record),
        content_hash="h",
        attempts=1,
        claimed_by="w",
        claim_token="t",
        lease_expires_at=datetime.now(UTC),
        resources=resources,
        retract=retract,
    )


def empty_searches(bundle: dict) -> tuple[int, dict, str]:
    """A batch of searches (the pusher's look-up before a first blind write) that finds nothing."""
    found = {"resourceType": "Bundle", "type": "searchset", "total": 0, "entry": []}
    entries = [{"response": {"status": "200 OK"}, "resource": found} for _ in bundle["entry"]]
    reply = {"resourceType": "Bundle", "type": "batch-response", "entry": entries}
    return 200, {}, json.dumps(reply)


def is_lookup(bundle: dict) -> bool:
    """True for the pusher's batch of searches (GETs), not a write."""
    return bundle["type"] == "batch" and all(
        e["request"]["method"] == "GET" for e in bundle["entry"]
    )


def answering_lookups(callback: Any) -> Any:
    """A POST [base] callback that answers look-ups with no match and writes with `callback`."""

    def answer(request: Any) -> tuple[int, dict, str]:
        bundle = json.loads(request.body)
        return empty_searches(bundle) if is_lookup(bundle) else callback(request)

    return answer


def transaction_response(request: Any) -> tuple[int, dict, str]:
    bundle = json.loads(request.body)
    if is_lookup(bundle):
        return empty_searches(bundle)
    entries = [
        {
            "response": {
                "status": "201 Created",
                "location": f"{e['request']['url'].split('?')[0]}/s{n}/_history/1",
            }
        }
        for n, e in enumerate(bundle["entry"])
    ]
    return (
        200,
        {},
        json.dumps(
            {"resourceType": "Bundle", "type": f"{bundle['type']}-response", "entry": entries}
        ),
    )


def outcome(code: str, text: str) -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }


@pytest.fixture
def client() -> FhirClient:
    return FhirClient(BASE, retry=NO_RETRY)


@responses.activate
def test_a_new_entry_is_created_in_one_transaction(client: FhirClient) -> None:
    responses.get(f"{BASE}/metadata", json=capability())
    responses.add_callback(responses.POST, BASE, callback=transaction_response)
    (delivery,) = Pusher(client).push([claimed()])
    assert delivery.outcome is Outcome.CREATED
    assert all(s.server_id and s.version_id == "1" for s in delivery.resources)
    # metadata + one look-up (a system caller's first write: are these ids another's?) + one
    # transaction
    assert len(responses.calls) == 3


@responses.activate
def test_a_412_is_a_conflict_with_both_copies(client: FhirClient) -> None:
    responses.get(f"{BASE}/metadata", json=capability())
    first = Pusher(client).push  # learn the ids a first push would record
    responses.add_callback(responses.POST, BASE, callback=transaction_response)
    sent = first([claimed()])[0].resources
    responses.replace(
        responses.POST, BASE, status=412, json=outcome("conflict", "version mismatch")
    )
    theirs = {
        "resourceType": "Observation",
        "id": "s0",
        "status": "amended",
        "subject": {"reference": "Patient/synthetic-mg-001"},  # the record's patient
    }
    for state in sent:
        responses.get(f"{BASE}/{state.resource_type}/{state.server_id}", json=theirs)
    changed = DiaryEntry(**{**ENTRY.__dict__, "fatigue": 9})
    (delivery,) = Pusher(client).push([claimed(changed, sent)])
    assert delivery.outcome is Outcome.CONFLICT
    assert delivery.error is not None and delivery.error.status == 412
    assert delivery.error.diagnostics == "version mismatch"
    (copy,) = delivery.server_versions.values()
    assert copy["theirs"] == theirs and copy["ours"]["valueInteger"] == 9


@responses.activate
def test_a_server_that_stays_unavailable_leaves_the_entry_for_a_retry(client: FhirClient) -> None:
    responses.get(f"{BASE}/metadata", json=capability())
    responses.post(BASE, status=503)
    (delivery,) = Pusher(client).push([claimed()])
    assert delivery.outcome is Outcome.RETRY and delivery.error.status == 503


@responses.activate
def test_unreachable_metadata_is_a_retry_for_every_entry(client: FhirClient) -> None:
    responses.get(f"{BASE}/metadata", body=requests.exceptions.ConnectionError("refused"))
    deliveries = Pusher(client).push([claimed(), claimed()])
    assert [d.outcome for d in deliveries] == [Outcome.RETRY, Outcome.RETRY]


@responses.activate
def test_a_refused_transaction_is_split_until_the_bad_record_stands_alone(
    client: FhirClient,
) -> None:
    responses.get(f"{BASE}/metadata", json=capability())
    bad_id = "bad-one"

    def callback(request: Any) -> tuple[int, dict, str]:
        bundle = json.loads(request.body)
        if any(
            bad_id in e["request"]["url"] or bad_id in json.dumps(e["resource"])
            for e in bundle["entry"]
        ):
            return 422, {}, json.dumps(outcome("invalid", "Observation.code: required"))
        return transaction_response(request)

    responses.add_callback(responses.POST, BASE, callback=answering_lookups(callback))
    good = [claimed(DiaryEntry(**{**ENTRY.__dict__, "entry_id": f"ok-{n}"})) for n in range(3)]
    bad = claimed(DiaryEntry(**{**ENTRY.__dict__, "entry_id": bad_id}))
    pusher = Pusher(client, chunk_size=200)
    deliveries = pusher.push([*good, bad])
    assert [d.outcome for d in deliveries] == [Outcome.CREATED] * 3 + [Outcome.FAILED]
    assert deliveries[-1].error.diagnostics == "Observation.code: required"
    assert pusher.chunk_size == 200  # a bad record is no reason to send smaller Bundles later


@responses.activate
def test_a_server_that_caps_transactions_gets_smaller_bundles_from_then_on(
    client: FhirClient,
) -> None:
    responses.get(f"{BASE}/metadata", json=capability())
    sizes: list[int] = []

    def callback(request: Any) -> tuple[int, dict, str]:
        size = len(json.loads(request.body)["entry"])
        sizes.append(size)
        if size > 30:
            return 400, {}, json.dumps(outcome("invalid", "too many update operations"))
        return transaction_response(request)

    responses.add_callback(responses.POST, BASE, callback=answering_lookups(callback))
    records = [claimed(DiaryEntry(**{**ENTRY.__dict__, "entry_id": f"r-{n}"})) for n in range(4)]
    pusher = Pusher(client, chunk_size=200)
    assert {d.outcome for d in pusher.push(records)} == {Outcome.CREATED}
    assert pusher.chunk_size <= 30
    sizes.clear()
    pusher.push(records[:2])
    assert sizes and max(sizes) <= 30  # learnt: no refused attempt the second time
    sizes.clear()
    # Another Pusher of the same server (a new request, another worker) knows it too.
    assert {d.outcome for d in Pusher(client, chunk_size=200).push(records)} == {Outcome.CREATED}
    assert sizes and max(sizes) <= 30
    assert client.limits.transaction_entries is not None
    assert client.limits.transaction_entries <= 30


@responses.activate
def test_a_conditional_cap_is_learned_once_per_server(client: FhirClient) -> None:
    responses.get(f"{BASE}/metadata", json=capability())
    transactions: list[int] = []

    def callback(request: Any) -> tuple[int, dict, str]:
        bundle = json.loads(request.body)
        transactions.append(len(bundle["entry"]))
        if len(bundle["entry"]) > 8:  # Medplum: at most 8 conditional entries
            return 400, {}, json.dumps(outcome("invalid", "too many conditional operations"))
        return transaction_response(request)

    def created(request: Any) -> tuple[int, dict, str]:
        body = json.loads(request.body)
        where = f"{BASE}/{body['resourceType']}/x{len(responses.calls)}/_history/1"
        return 201, {"Location": where}, json.dumps({**body, "id": "x", "meta": {"versionId": "1"}})

    responses.add_callback(responses.POST, BASE, callback=callback)
    responses.add_callback(
        responses.POST, re.compile(f"{BASE}/(Observation|MedicationAdministration)$"), created
    )
    records = [claimed(DiaryEntry(**{**ENTRY.__dict__, "entry_id": f"c-{n}"})) for n in range(2)]
    first = Pusher(client, method="conditional-create").push(records[:1])
    assert [d.outcome for d in first] == [Outcome.CREATED]
    assert len(transactions) == 1  # refused once, then sent one by one
    assert client.limits.conditional_entries is not None
    assert client.limits.conditional_entries < transactions[0]
    transactions.clear()
    again = Pusher(client, method="conditional-create").push(records[1:])
    assert [d.outcome for d in again] == [Outcome.CREATED]
    assert transactions == []  # no refused transaction the second time


@responses.activate
def test_without_transactions_batch_reports_each_entry(client: FhirClient) -> None:
    responses.get(f"{BASE}/metadata", json=capability(transaction=False))

    def callback(request: Any) -> tuple[int, dict, str]:
        bundle = json.loads(request.body)
        assert bundle["type"] == "batch"
        entries = []
        for n, e in enumerate(bundle["entry"]):
            if "second" in json.dumps(e["resource"]) and n % 13 == 0:
                entries.append({"response": {"status": "400", "outcome": outcome("invalid", "x")}})
            else:
                entries.append(
                    {"response": {"status": "200", "location": f"{e['request']['url']}/_history/2"}}
                )
        return (
            200,
            {},
            json.dumps({"resourceType": "Bundle", "type": "batch-response", "entry": entries}),
        )

    responses.add_callback(responses.POST, BASE, callback=answering_lookups(callback))
    second = DiaryEntry(**{**ENTRY.__dict__, "entry_id": "second"})
    deliveries = Pusher(client).push([claimed(), claimed(second)])
    assert [d.outcome for d in deliveries] == [Outcome.CREATED, Outcome.FAILED]


@responses.activate
def test_without_batch_or_transaction_each_resource_is_written_alone(client: FhirClient) -> None:
    responses.get(
        f"{BASE}/metadata", json=capability(transaction=False, batch=False, update_create=False)
    )
    puts: list[str] = []

    def callback(request: Any) -> tuple[int, dict, str]:
        puts.append(request.url)
        return 201, {"Location": f"{request.url.split('?')[0]}/x{len(puts)}/_history/1"}, "{}"

    responses.add_callback(responses.PUT, re.compile(f"{BASE}/.*"), callback=callback)
    nothing = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    lookups = [  # no batch: one search per type
        responses.get(f"{BASE}/{t}", json=nothing)
        for t in ("Observation", "MedicationAdministration")
    ]
    (delivery,) = Pusher(client).push([claimed()])
    assert [lookup.call_count for lookup in lookups] == [1, 1]
    assert delivery.outcome is Outcome.CREATED
    assert len(puts) == len(delivery.resources)
    assert all("identifier=" in url for url in puts)  # conditional update, no server search twice


@responses.activate
def test_a_retraction_marks_resources_entered_in_error_with_if_match(client: FhirClient) -> None:
    responses.get(f"{BASE}/metadata", json=capability())
    state = ResourceState(
        "Observation",
        "https://diarybridge.dev/fhir/sid/mg-diary-app",
        "diary-entry/x/fatigue",
        server_id="o1",
        version_id="4",
    )
    responses.get(
        f"{BASE}/Observation/o1",
        json={
            "resourceType": "Observation",
            "id": "o1",
            "status": "final",
            "meta": {"versionId": "4"},
            "subject": {"reference": "Patient/synthetic-mg-001"},
        },
    )
    put = responses.put(
        f"{BASE}/Observation/o1",
        status=200,
        headers={"ETag": 'W/"5"'},
        json={"resourceType": "Observation"},
    )
    (delivery,) = Pusher(client).push([claimed(resources=(state,), retract=True)])
    assert delivery.outcome is Outcome.RETRACTED
    assert delivery.resources[0].version_id == "5"
    assert json.loads(put.calls[0].request.body)["status"] == "entered-in-error"
    assert put.calls[0].request.headers["If-Match"] == 'W/"4"'


@responses.activate
def test_a_412_never_keeps_another_patients_server_copy(client: FhirClient) -> None:
    responses.get(f"{BASE}/metadata", json=capability())
    responses.add_callback(responses.POST, BASE, callback=transaction_response)
    sent = Pusher(client).push([claimed()])[0].resources
    responses.replace(responses.POST, BASE, status=412, json=outcome("conflict", "version"))
    foreign = {
        "resourceType": "Observation",
        "id": "s0",
        "status": "final",
        "subject": {"reference": "Patient/synthetic-mg-002"},
        "valueInteger": 7,
    }
    for state in sent:
        responses.get(f"{BASE}/{state.resource_type}/{state.server_id}", json=foreign)
    changed = DiaryEntry(**{**ENTRY.__dict__, "fatigue": 9})
    (delivery,) = Pusher(client).push([claimed(changed, sent)])
    assert delivery.outcome is Outcome.CONFLICT
    assert delivery.server_versions
    for copy in delivery.server_versions.values():
        assert copy["theirs"] is None and "withheld" in copy
    assert "synthetic-mg-002" not in json.dumps(delivery.server_versions)


@responses.activate
def test_a_retraction_never_touches_a_resource_of_another_patient(client: FhirClient) -> None:
    responses.get(f"{BASE}/metadata", json=capability())
    state = ResourceState("Observation", "sys", "diary-entry/x/fatigue", "s0", "1")
    foreign = {
        "resourceType": "Observation",
        "id": "s0",
        "status": "final",
        "meta": {"versionId": "1"},
        "subject": {"reference": "Patient/synthetic-mg-002"},
    }
    responses.get(f"{BASE}/Observation/s0", json=foreign)
    put = responses.put(f"{BASE}/Observation/s0", json=foreign)
    (delivery,) = Pusher(client).push([claimed(resources=(state,), retract=True)])
    assert delivery.outcome is Outcome.FAILED
    assert delivery.error is not None and delivery.error.code == "foreign_subject"
    assert put.call_count == 0


@responses.activate
def test_a_conditional_create_matching_another_patient_keeps_nothing(client: FhirClient) -> None:
    responses.get(f"{BASE}/metadata", json=capability(update_create=False))
    foreign = {
        "resourceType": "Observation",
        "id": "theirs-1",
        "meta": {"versionId": "3"},
        "status": "final",
        "subject": {"reference": "Patient/synthetic-mg-002"},
    }

    def matched(request: Any) -> tuple[int, dict, str]:
        bundle = json.loads(request.body)
        entries = [
            {"response": {"status": "200 OK", "location": "Observation/theirs-1/_history/3"}}
            for _ in bundle["entry"]
        ]
        reply = {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
        return 200, {}, json.dumps(reply)

    responses.add_callback(responses.POST, BASE, callback=matched)
    responses.get(f"{BASE}/Observation/theirs-1", json=foreign)
    (delivery,) = Pusher(client, method="conditional-create").push([claimed()])
    assert delivery.outcome is Outcome.FAILED
    assert delivery.error is not None and delivery.error.code == "foreign_subject"
    assert delivery.resources == ()  # its server id is not recorded, so never updated later


def sent_types(bundle_request: Any) -> list[str]:
    return [e["resource"]["resourceType"] for e in json.loads(bundle_request.body)["entry"]]


@pytest.mark.parametrize(
    ("types", "update_create", "adverse_events"),
    [
        (("Observation", "MedicationAdministration", "AdverseEvent"), True, 1),
        (("Observation", "MedicationAdministration"), True, 0),  # e.g. SEKMET
        # conditional writes would search AdverseEvent by identifier, which R4 lacks
        (("Observation", "MedicationAdministration", "AdverseEvent"), False, 0),
    ],
)
@responses.activate
def test_an_adverse_event_goes_only_to_a_server_that_takes_it(
    client: FhirClient, types: tuple[str, ...], update_create: bool, adverse_events: int
) -> None:
    responses.get(f"{BASE}/metadata", json=capability(types=types, update_create=update_create))
    responses.add_callback(responses.POST, BASE, callback=transaction_response)
    entry = replace(
        claimed(), kind="infusion", source_id=INFUSION.infusion_id, record=dump_record(INFUSION)
    )
    (delivery,) = Pusher(client).push([entry])
    assert delivery.outcome is Outcome.CREATED  # the record is delivered either way
    sent = sent_types(responses.calls[-1].request)
    assert sent.count("AdverseEvent") == adverse_events
    assert sent.count("Observation") == len(INFUSION.adverse_reactions)

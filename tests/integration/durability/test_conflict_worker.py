"""A clinician's edit on the server is a conflict on the worker path too; once a reviewer decides
ours should win, a requeue with include_conflicts delivers ours over the version they saw (and
only that version: an edit made after the review is a new conflict)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from sqlalchemy.orm import Session, sessionmaker

from service import store
from service.config import FhirServerSettings
from service.store import list_entries, requeue_failed
from service.sync.accept import accept_records
from service.sync.runtime import SyncRuntime
from tests.durability_proxy import FaultProxy, Seen
from tests.durability_proxy.proxy import is_bundle_post
from tests.integration.durability.conftest import migrated_sessions
from tests.integration.durability.helpers import (
    NAMESPACE,
    diary_payloads,
    expected_identifiers,
    records_of,
    server_identifiers,
    unique_patient,
)

pytestmark = pytest.mark.integration
FHIR_JSON = {"Content-Type": "application/fhir+json"}
Json = dict[str, Any]


def edit_on_server(fhir_server: str, resource: Json, note: str) -> Json:
    """Someone else's update of one of our resources; returns the server's new version."""
    mine = {**resource, "note": [{"text": note}]}
    edited = requests.put(
        f"{fhir_server}/Observation/{resource['id']}", json=mine, headers=FHIR_JSON, timeout=10
    )
    assert edited.ok
    body: Json = edited.json()
    return body


def read(fhir_server: str, resource_id: str) -> Json:
    body: Json = requests.get(f"{fhir_server}/Observation/{resource_id}", timeout=10).json()
    return body


def make_conflict(
    fhir_server: str, sessions: sessionmaker[Session], runtime: SyncRuntime, patient: str
) -> tuple[list[Json], Json]:
    """Deliver 3 entries, let a clinician edit one's fatigue Observation, then change that entry
    in the app and run the worker: returns (the changed entries, the clinician's version)."""
    entries = diary_payloads(patient, 3)
    accept_records(sessions, NAMESPACE, records_of(entries))
    assert {d.outcome.value for d in runtime.worker().drain()} == {"created"}

    fatigue_id = f"diary-entry/{entries[0]['entry_id']}/fatigue"
    hits = requests.get(
        f"{fhir_server}/Observation",
        params={"subject": f"Patient/{patient}", "_count": 200},
        timeout=10,
    ).json()["entry"]
    ours = next(
        h["resource"] for h in hits if h["resource"]["identifier"][0]["value"] == fatigue_id
    )
    theirs = edit_on_server(fhir_server, ours, "clinician's note (synthetic)")

    changed = [{**entries[0], "fatigue": (entries[0]["fatigue"] + 4) % 11}, *entries[1:]]
    accept_records(sessions, NAMESPACE, records_of(changed))
    assert [d.outcome.value for d in runtime.worker().drain()] == ["conflict"]
    return changed, theirs


def test_a_clinicians_edit_conflicts_and_a_requeue_after_review_delivers_ours(
    any_fhir_server: str, sqlite_url: str
) -> None:
    fhir_server = any_fhir_server
    sessions = migrated_sessions(sqlite_url)
    runtime = SyncRuntime(FhirServerSettings(base_url=fhir_server, chunk_size=20), sessions)
    patient = unique_patient("conflict")
    changed, theirs = make_conflict(fhir_server, sessions, runtime, patient)

    with sessions.begin() as session:
        (conflict,) = list_entries(session, "conflict")
    assert conflict.source_id == changed[0]["entry_id"]
    both = conflict.conflict[f"Observation/{theirs['id']}"]
    assert both["theirs"]["note"] == theirs["note"]
    assert both["ours"]["valueInteger"] == changed[0]["fatigue"]
    kept = read(fhir_server, theirs["id"])
    assert kept["note"] == theirs["note"] and kept["meta"] == theirs["meta"]
    # A worker pass leaves a conflict alone: it waits for review.
    assert runtime.worker().drain() == []

    # The reviewer decided ours wins: requeue with include_conflicts; the worker delivers ours.
    with sessions.begin() as session:
        assert requeue_failed(session, include_conflicts=True) == 1
    assert [d.outcome.value for d in runtime.worker().drain()] == ["updated"]
    now = read(fhir_server, theirs["id"])
    assert now["valueInteger"] == changed[0]["fatigue"] and "note" not in now
    assert now["meta"]["versionId"] != theirs["meta"]["versionId"]
    with sessions.begin() as session:
        assert store.status_counts(session).counts == {"sent": 3}
    assert server_identifiers(fhir_server, patient) == expected_identifiers(records_of(changed))


def test_an_edit_made_after_the_review_is_a_new_conflict(
    any_fhir_server: str, sqlite_url: str
) -> None:
    fhir_server = any_fhir_server
    sessions = migrated_sessions(sqlite_url)
    runtime = SyncRuntime(FhirServerSettings(base_url=fhir_server, chunk_size=20), sessions)
    patient = unique_patient("conflict2")
    _changed, theirs = make_conflict(fhir_server, sessions, runtime, patient)
    later = edit_on_server(fhir_server, theirs, "a second clinician's note (synthetic)")

    with sessions.begin() as session:
        assert requeue_failed(session, include_conflicts=True) == 1
    assert [d.outcome.value for d in runtime.worker().drain()] == ["conflict"]
    kept = read(fhir_server, theirs["id"])
    assert kept["note"] == later["note"] and kept["meta"]["versionId"] == later["meta"]["versionId"]
    with sessions.begin() as session:
        (conflict,) = list_entries(session, "conflict")
    assert conflict.conflict[f"Observation/{theirs['id']}"]["theirs"]["note"] == later["note"]


def test_a_conflict_in_a_shared_bundle_does_not_shrink_later_bundles(
    fhir_server: str, sqlite_url: str, proxies: list[FaultProxy]
) -> None:
    proxy = FaultProxy(fhir_server).start()
    proxies.append(proxy)
    sessions = migrated_sessions(sqlite_url)
    runtime = SyncRuntime(FhirServerSettings(base_url=proxy.base_url, chunk_size=50), sessions)
    worker = runtime.worker()  # one long-lived worker, as `diarybridge worker` runs it
    patient = unique_patient("shared")
    entries = diary_payloads(patient, 9)
    first, later = entries[:3], entries[3:]
    accept_records(sessions, NAMESPACE, records_of(first))
    assert {d.outcome.value for d in worker.drain()} == {"created"}
    assert len(bundles(proxy)) == 1  # three records of 13 resources share one Bundle

    fatigue_id = f"diary-entry/{first[1]['entry_id']}/fatigue"
    hits = requests.get(
        f"{fhir_server}/Observation",
        params={"subject": f"Patient/{patient}", "_count": 200},
        timeout=10,
    ).json()["entry"]
    ours = next(
        h["resource"] for h in hits if h["resource"]["identifier"][0]["value"] == fatigue_id
    )
    edit_on_server(fhir_server, ours, "clinician's note (synthetic)")
    changed = [{**e, "fatigue": (e["fatigue"] + 4) % 11} for e in first]
    accept_records(sessions, NAMESPACE, records_of(changed))
    outcomes = {d.entry.source_id: d.outcome.value for d in worker.drain()}
    assert outcomes == {
        first[0]["entry_id"]: "updated",
        first[1]["entry_id"]: "conflict",
        first[2]["entry_id"]: "updated",
    }

    before = len(bundles(proxy))
    accept_records(sessions, NAMESPACE, records_of(later))
    assert {d.outcome.value for d in worker.drain()} == {"created"}
    # Six records of 13 resources fit in two Bundles of <= 50: the conflict taught us nothing
    # about the server's size limit, so it must not have shrunk the Bundles.
    assert len(bundles(proxy)) - before == 2


def bundles(proxy: FaultProxy) -> list[Seen]:
    """The transactions the worker sent through the proxy (not the batch of searches that looks
    up a system caller's new ids first)."""
    return [
        s
        for s in proxy.requests("POST")
        if is_bundle_post(s) and s.json().get("type") == "transaction"
    ]

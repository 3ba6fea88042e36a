"""The ledger and outbox functions, each on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.store import (
    AcceptItem,
    ClaimedEntry,
    DuplicateItemError,
    ErrorInfo,
    InvalidItemError,
    LeaseLostError,
    Patients,
    ResourceState,
    accept,
    backoff_seconds,
    claim_batch,
    content_hash,
    get_entry,
    get_request,
    list_entries,
    mark_conflict,
    mark_failed,
    mark_retracted,
    mark_sent,
    record_audit,
    release_claims,
    requeue_failed,
    status_counts,
)
from service.store.models import AuditLog, LedgerEntry, SyncRequest

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
ALL = Patients.every()
NS = "diary-app"
IDENT = "https://diarybridge.dev/fhir/NamingSystem/diary-entry"

Factory = sessionmaker[Session]


def item(source_id: str, fatigue: int = 3, kind: str = "diary-entry") -> AcceptItem:
    """A synthetic diary entry in our record format."""
    return AcceptItem(
        namespace=NS,
        kind=kind,
        source_id=source_id,
        patient_key="Patient/synthetic-1",
        record={
            "entry_id": source_id,
            "recorded_at": "2026-03-01T07:00:00+00:00",
            "fatigue": fatigue,
        },
    )


def accept_now(factory: Factory, items: list[AcceptItem], at: datetime = T0) -> str:
    with factory.begin() as session:
        return accept(session, "client-a", items, now=at)


def claim(
    factory: Factory, worker: str, limit: int = 10, lease: float = 60, at: datetime = T0
) -> list[ClaimedEntry]:
    with factory.begin() as session:
        return claim_batch(session, worker, limit, lease, now=at)


def entry(factory: Factory, source_id: str, kind: str = "diary-entry") -> Any:
    with factory.begin() as session:
        return get_entry(session, NS, kind, source_id, patients=ALL)


def observation(value: str, server_id: str, version: str) -> ResourceState:
    return ResourceState("Observation", IDENT, value, server_id, version, f'W/"{version}"')


def test_accept_queues_new_items_and_request_reports_them(factory: Factory) -> None:
    request_id = accept_now(
        factory, [item("e1"), item("e2", kind="diary-entry"), item("i1", kind="infusion")]
    )

    with factory.begin() as session:
        progress = get_request(session, request_id, client_id=None, patients=ALL)
        stored = get_entry(session, NS, "diary-entry", "e1", patients=ALL)
    assert progress is not None
    assert progress.client_id == "client-a"
    assert progress.item_count == 3
    assert progress.counts == {"queued": 3}
    assert not progress.done
    assert [(i.kind, i.source_id, i.disposition) for i in progress.items] == [
        ("diary-entry", "e1", "queued"),
        ("diary-entry", "e2", "queued"),
        ("infusion", "i1", "queued"),
    ]
    assert stored is not None
    assert stored.status == "queued"
    assert stored.record == item("e1").record
    assert stored.content_hash == content_hash(item("e1").record)
    assert stored.created_at == T0


def test_get_request_and_entry_unknown_return_none(factory: Factory) -> None:
    with factory.begin() as session:
        assert (
            get_request(
                session, "00000000-0000-4000-8000-000000000000", client_id=None, patients=ALL
            )
            is None
        )
        assert get_entry(session, NS, "diary-entry", "nope", patients=ALL) is None


def test_same_content_again_keeps_a_sent_entry_sent(factory: Factory) -> None:
    accept_now(factory, [item("e1")])
    [claimed] = claim(factory, "w1")
    with factory.begin() as session:
        mark_sent(session, claimed, [observation("e1-fatigue", "obs-1", "1")], now=T0)

    later = T0 + timedelta(hours=1)
    request_id = accept_now(factory, [item("e1")], at=later)

    stored = entry(factory, "e1")
    assert stored.status == "sent"
    assert stored.updated_at == T0  # untouched
    assert claim(factory, "w2", at=later + timedelta(days=1)) == []
    with factory.begin() as session:
        progress = get_request(session, request_id, client_id=None, patients=ALL)
    assert progress is not None
    assert progress.items[0].disposition == "unchanged"
    assert progress.counts == {"sent": 1}
    assert progress.done


def test_changed_content_requeues_a_sent_entry(factory: Factory) -> None:
    first_request = accept_now(factory, [item("e1", fatigue=3)])
    [claimed] = claim(factory, "w1")
    with factory.begin() as session:
        mark_sent(session, claimed, [observation("e1-fatigue", "obs-1", "1")], now=T0)

    later = T0 + timedelta(minutes=5)
    second_request = accept_now(factory, [item("e1", fatigue=7)], at=later)

    stored = entry(factory, "e1")
    assert stored.status == "queued"
    assert stored.attempts == 0
    assert stored.record["fatigue"] == 7
    assert stored.sent_hash == content_hash(item("e1", fatigue=3).record)
    [again] = claim(factory, "w2", at=later)
    assert again.record["fatigue"] == 7
    # The worker gets what the server holds, for a conditional update with the version.
    assert again.resources == (
        ResourceState(
            "Observation", IDENT, "e1-fatigue", "obs-1", "1", 'W/"1"', claimed.content_hash
        ),
    )
    with factory.begin() as session:
        old = get_request(session, first_request, client_id=None, patients=ALL)
        new = get_request(session, second_request, client_id=None, patients=ALL)
    assert old is not None and new is not None
    assert old.counts == {"superseded": 1}
    assert new.counts == {"queued": 1}


def test_accept_rejects_duplicates_and_unknown_kinds_and_stores_nothing(factory: Factory) -> None:
    with pytest.raises(DuplicateItemError), factory.begin() as session:
        accept(session, "client-a", [item("e1"), item("e2"), item("e1", fatigue=9)], now=T0)
    with pytest.raises(InvalidItemError), factory.begin() as session:
        accept(session, "client-a", [item("e1"), item("x", kind="lab-result")], now=T0)
    with pytest.raises(InvalidItemError), factory.begin() as session:
        bad = AcceptItem(NS, "diary-entry", "e3", "Patient/1", {"when": T0})  # not JSON
        accept(session, "client-a", [item("e1"), bad], now=T0)

    with factory.begin() as session:
        assert session.scalar(select(func.count()).select_from(LedgerEntry)) == 0
        assert session.scalar(select(func.count()).select_from(SyncRequest)) == 0


def test_accept_is_undone_with_its_transaction(factory: Factory) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), factory.begin() as session:
        accept(session, "client-a", [item("e1"), item("e2")], now=T0)
        raise Boom

    with factory.begin() as session:
        assert session.scalar(select(func.count()).select_from(LedgerEntry)) == 0


def test_claim_takes_oldest_first_up_to_limit_and_not_twice(factory: Factory) -> None:
    accept_now(factory, [item("e1"), item("e2")], at=T0)
    accept_now(factory, [item("e3")], at=T0 + timedelta(seconds=1))
    now = T0 + timedelta(seconds=2)

    first = claim(factory, "w1", limit=2, at=now)
    second = claim(factory, "w2", limit=5, at=now)
    third = claim(factory, "w3", limit=5, at=now)

    assert [c.source_id for c in first] == ["e1", "e2"]
    assert [c.source_id for c in second] == ["e3"]
    assert third == []
    assert {c.claimed_by for c in first} == {"w1"}
    assert first[0].attempts == 1
    assert first[0].lease_expires_at == now + timedelta(seconds=60)
    with factory.begin() as session:
        counts = status_counts(session, now=now)
    assert counts.counts == {"queued": 3}
    assert counts.in_flight == 3


def test_claim_for_one_request_takes_only_its_entries(factory: Factory) -> None:
    accept_now(factory, [item("other-1"), item("other-2")], at=T0)
    mine = accept_now(factory, [item("mine-1"), item("other-1", fatigue=9)], at=T0)
    with factory.begin() as session:
        claimed = claim_batch(session, "sync", 10, 60, request_id=mine, now=T0)
    assert sorted(c.source_id for c in claimed) == ["mine-1", "other-1"]
    assert [c.source_id for c in claim(factory, "worker")] == ["other-2"]


def test_claim_respects_lease_expiry(factory: Factory) -> None:
    accept_now(factory, [item("e1"), item("e2")])
    held = claim(factory, "w-dead", lease=30)
    assert len(held) == 2

    assert claim(factory, "w2", at=T0 + timedelta(seconds=29)) == []
    retaken = claim(factory, "w2", at=T0 + timedelta(seconds=30))

    assert sorted(c.source_id for c in retaken) == ["e1", "e2"]
    assert all(c.attempts == 2 for c in retaken)
    assert {c.claim_token for c in retaken}.isdisjoint({c.claim_token for c in held})
    # The dead worker coming back must not overwrite the new holder's outcome.
    with pytest.raises(LeaseLostError), factory.begin() as session:
        mark_sent(session, held[0], [], now=T0 + timedelta(seconds=31))
    with factory.begin() as session:
        assert mark_sent(session, retaken[0], [], now=T0 + timedelta(seconds=31)) == "sent"


def test_late_report_is_accepted_while_nobody_reclaimed(factory: Factory) -> None:
    accept_now(factory, [item("e1")])
    [held] = claim(factory, "w1", lease=10)
    with factory.begin() as session:
        assert mark_sent(session, held, [], now=T0 + timedelta(minutes=5)) == "sent"


def test_mark_sent_records_server_ids_and_versions(factory: Factory) -> None:
    accept_now(factory, [item("e1", fatigue=1)])
    [first] = claim(factory, "w1")
    with factory.begin() as session:
        status = mark_sent(
            session,
            first,
            [observation("e1-fatigue", "obs-1", "1"), observation("e1-adl", "obs-2", "1")],
            now=T0,
        )
    assert status == "sent"

    accept_now(factory, [item("e1", fatigue=2)], at=T0 + timedelta(minutes=1))
    [second] = claim(factory, "w1", at=T0 + timedelta(minutes=1))
    with factory.begin() as session:
        mark_sent(
            session,
            second,
            [ResourceState("Observation", IDENT, "e1-fatigue", "obs-1", "2", 'W/"2"', "f" * 64)],
            now=T0 + timedelta(minutes=1),
        )

    stored = entry(factory, "e1")
    assert stored.status == "sent"
    assert stored.sent_hash == second.content_hash
    assert stored.in_flight is False
    assert stored.resources == (
        ResourceState("Observation", IDENT, "e1-fatigue", "obs-1", "2", 'W/"2"', "f" * 64),
        ResourceState("Observation", IDENT, "e1-adl", "obs-2", "1", 'W/"1"', first.content_hash),
    )


def test_content_changed_while_in_flight_is_queued_again_after_the_report(factory: Factory) -> None:
    accept_now(factory, [item("e1", fatigue=1)])
    [held] = claim(factory, "w1", lease=60)
    accept_now(factory, [item("e1", fatigue=2)], at=T0 + timedelta(seconds=5))

    # The holder's lease still protects the row from a second worker.
    assert claim(factory, "w2", at=T0 + timedelta(seconds=6)) == []
    with factory.begin() as session:
        status = mark_sent(
            session, held, [observation("e1-fatigue", "obs-1", "1")], now=T0 + timedelta(seconds=7)
        )

    assert status == "queued"
    [again] = claim(factory, "w2", at=T0 + timedelta(seconds=7))
    assert again.record["fatigue"] == 2
    assert again.resources[0].server_id == "obs-1"


def test_mark_failed_backs_off_then_fails_after_max_attempts(factory: Factory) -> None:
    accept_now(factory, [item("e1")])
    now = T0
    error = ErrorInfo(status=503, code="transient", diagnostics="server unavailable")
    statuses = []
    for attempt in range(1, 4):
        [held] = claim(factory, "w1", at=now)
        assert held.attempts == attempt
        with factory.begin() as session:
            statuses.append(
                mark_failed(session, held, error, retryable=True, max_attempts=3, now=now)
            )
        if statuses[-1] == "queued":
            # Not due before the backoff has passed.
            delay = timedelta(seconds=backoff_seconds(attempt))
            assert claim(factory, "w1", at=now + delay - timedelta(seconds=1)) == []
            now += delay

    assert statuses == ["queued", "queued", "failed"]
    stored = entry(factory, "e1")
    assert stored.status == "failed"
    assert stored.attempts == 3
    assert stored.last_error == {
        "status": 503,
        "code": "transient",
        "severity": None,
        "expression": [],
    }
    assert claim(factory, "w1", at=now + timedelta(days=30)) == []


def test_mark_failed_not_retryable_fails_at_once_and_honours_retry_after(factory: Factory) -> None:
    accept_now(factory, [item("e1"), item("e2")])
    held = claim(factory, "w1")
    with factory.begin() as session:
        assert (
            mark_failed(session, held[0], ErrorInfo(422, "invalid"), retryable=False, now=T0)
            == "failed"
        )
        assert (
            mark_failed(
                session,
                held[1],
                ErrorInfo(429, "throttled"),
                retryable=True,
                retry_after_seconds=600,
                now=T0,
            )
            == "queued"
        )
    assert claim(factory, "w1", at=T0 + timedelta(seconds=599)) == []
    assert [c.source_id for c in claim(factory, "w1", at=T0 + timedelta(seconds=600))] == ["e2"]


def test_requeue_failed_by_id_and_all(factory: Factory) -> None:
    accept_now(factory, [item("e1"), item("e2"), item("e3")])
    for held in claim(factory, "w1"):
        with factory.begin() as session:
            mark_failed(session, held, ErrorInfo(400, "bad"), retryable=False, now=T0)
    e1 = entry(factory, "e1")

    later = T0 + timedelta(hours=1)
    with factory.begin() as session:
        assert requeue_failed(session, [e1.ledger_id], now=later) == 1
    assert entry(factory, "e1").status == "queued"
    assert entry(factory, "e1").attempts == 0
    assert entry(factory, "e2").status == "failed"
    with factory.begin() as session:
        assert requeue_failed(session, now=later) == 2
        assert requeue_failed(session, now=later) == 0
        assert requeue_failed(session, [], now=later) == 0
    assert sorted(c.source_id for c in claim(factory, "w1", at=later)) == ["e1", "e2", "e3"]


def test_mark_conflict_keeps_the_server_version_for_review(factory: Factory) -> None:
    accept_now(factory, [item("e1")])
    held = claim(factory, "w1")
    server_version = {"resourceType": "Observation", "id": "obs-1", "meta": {"versionId": "4"}}
    with factory.begin() as session:
        status = mark_conflict(
            session, held[0], server_version, ErrorInfo(412, "precondition-failed"), now=T0
        )
        conflicts = list_entries(session, "conflict")
    assert status == "conflict"
    assert [c.source_id for c in conflicts] == ["e1"]
    assert conflicts[0].conflict == server_version
    assert conflicts[0].last_error == {
        "status": 412,
        "code": "precondition-failed",
        "severity": None,
        "expression": [],
    }
    assert claim(factory, "w1", at=T0 + timedelta(days=1)) == []


def test_mark_retracted(factory: Factory) -> None:
    accept_now(factory, [item("e1")])
    [held] = claim(factory, "w1")
    with factory.begin() as session:
        status = mark_retracted(session, held, [observation("e1-fatigue", "obs-1", "3")], now=T0)
    assert status == "retracted"
    stored = entry(factory, "e1")
    assert stored.status == "retracted"
    assert stored.resources[0].version_id == "3"


def test_status_counts_and_oldest_queued_age(factory: Factory) -> None:
    with factory.begin() as session:
        empty = status_counts(session, now=T0)
    assert empty.counts == {}
    assert empty.oldest_queued_age_seconds is None

    accept_now(factory, [item("e1"), item("e2")], at=T0)
    accept_now(factory, [item("e3")], at=T0 + timedelta(seconds=30))
    [held] = claim(factory, "w1", limit=1, at=T0 + timedelta(seconds=40))
    with factory.begin() as session:
        mark_sent(session, held, [], now=T0 + timedelta(seconds=40))
        counts = status_counts(session, now=T0 + timedelta(seconds=100))
    assert counts.counts == {"queued": 2, "sent": 1}
    assert counts.in_flight == 0
    assert counts.oldest_queued_age_seconds == pytest.approx(100.0)


def test_record_audit(factory: Factory) -> None:
    with factory.begin() as session:
        audit_id = record_audit(
            session,
            client_id="client-a",
            scopes=["system/Observation.write", "system/MedicationAdministration.write"],
            action="sync.accept",
            patient="Patient/synthetic-1",
            resource_kind="diary-entry",
            count=2,
            request_id="r-1",
            at=T0,
        )
    with factory.begin() as session:
        row = session.get(AuditLog, audit_id)
        assert row is not None
        assert row.at == T0
        assert row.scopes == "system/MedicationAdministration.write system/Observation.write"
        assert (row.client_id, row.action, row.patient, row.count) == (
            "client-a",
            "sync.accept",
            "Patient/synthetic-1",
            2,
        )


def test_last_error_is_stored_as_json_with_fixed_keys(factory: Factory) -> None:
    accept_now(factory, [item("e1")])
    [held] = claim(factory, "w1")
    with factory.begin() as session:
        mark_failed(session, held, ErrorInfo(500, "boom", "x" * 2000), retryable=True, now=T0)
        raw = session.scalar(select(LedgerEntry.last_error))
    assert raw is not None
    stored = json.loads(raw)
    assert set(stored) == {"status", "code", "severity", "expression"}  # never diagnostics


def test_release_claims_gives_entries_back_without_counting_the_attempt(factory: Factory) -> None:
    accept_now(factory, [item("e1"), item("e2")])
    held = claim(factory, "w1", lease=600)
    [stolen] = claim(factory, "w2", at=T0 + timedelta(seconds=600), limit=1)
    assert stolen.source_id == "e1"  # w1's lease on e1 ran out and w2 took it

    with factory.begin() as session:
        released = release_claims(session, held, now=T0 + timedelta(seconds=601))
    assert released == 1  # e2 only; e1 belongs to w2 now
    [again] = claim(factory, "w3", at=T0 + timedelta(seconds=601))
    assert again.source_id == "e2"
    assert again.attempts == 1  # w1's unused attempt was given back


def test_requeue_failed_leaves_conflicts_unless_asked(factory: Factory) -> None:
    accept_now(factory, [item("e1"), item("e2")])
    failed, conflicted = claim(factory, "w1")
    with factory.begin() as session:
        mark_failed(session, failed, ErrorInfo(400, "bad"), retryable=False, now=T0)
        mark_conflict(session, conflicted, {"resourceType": "Observation"}, now=T0)
        assert requeue_failed(session, now=T0) == 1
        assert requeue_failed(session, include_conflicts=True, now=T0) == 1
    stored = entry(factory, "e2")
    assert stored.status == "queued"
    assert stored.conflict is None
    assert sorted(c.source_id for c in claim(factory, "w2")) == ["e1", "e2"]

"""Accepting records into the ledger and reading it back: requests, entries, counts."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Select, func, select, true, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.store.clock import utcnow
from service.store.errors import (
    AmbiguousRecordError,
    DuplicateItemError,
    InvalidItemError,
    PatientMismatchError,
)
from service.store.hashing import canonical_json, text_hash
from service.store.models import (
    LedgerEntry,
    LedgerResource,
    LedgerStatus,
    RecordKind,
    SyncRequest,
    SyncRequestItem,
    ledger_entry_table,
    sync_request_item_table,
)
from service.store.values import (
    AcceptItem,
    Disposition,
    EntryView,
    Patients,
    RequestItemProgress,
    RequestProgress,
    ResourceState,
    StatusCounts,
)

CHUNK = 500  # rows per statement: well under SQLite's and PostgreSQL's bound-parameter limits
SUPERSEDED = "superseded"  # request item whose entry has newer content from a later request

_KINDS = frozenset(k.value for k in RecordKind)
_Key = tuple[str, str, str]


def accept(
    session: Session,
    client_id: str,
    items: Sequence[AcceptItem],
    *,
    now: datetime | None = None,
) -> str:
    """Store items in the ledger and record the request; returns the new request id.

    New or changed content is queued; the same content again leaves the entry's status as it is
    (a sent entry stays sent). A record keeps its patient forever: an item of a patient-bound
    sender (per_patient) is its patient's own record, and an item whose id the namespace already
    gave another patient raises PatientMismatchError. Runs in the caller's transaction: commit
    before acknowledging.
    """
    now = now or utcnow()
    # Sorted by key: concurrent requests then lock shared rows in the same order (no deadlock).
    prepared = dict(sorted(_prepare(items).items()))
    request_id = str(uuid.uuid4())
    session.add(
        SyncRequest(id=request_id, client_id=client_id, item_count=len(prepared), created_at=now)
    )
    session.flush()

    rows = _resolve(session, prepared)
    new = [key for key in prepared if key not in rows]
    ids: dict[_Key, int] = {}
    dispositions: dict[_Key, Disposition] = {}
    # Insert what is new; ON CONFLICT DO NOTHING keeps concurrent requests for the same record
    # from failing each other, and RETURNING tells which rows this call created.
    # One statement, many parameter sets: SQLAlchemy batches them as multi-row VALUES.
    new_rows = [_new_row(*prepared[key], now) for key in new]
    if new_rows:
        for inserted in session.execute(_insert_ignoring_conflicts(session), new_rows):
            key = (inserted.namespace, inserted.kind, inserted.source_id)
            ids[key] = inserted.id
            dispositions[key] = Disposition.QUEUED
    raced = {key: prepared[key] for key in new if key not in ids}
    if raced:  # a concurrent request inserted these first: take what it made (or refuse)
        rows.update(_resolve(session, raced))
        missing = [key for key in raced if key not in rows]
        if missing:  # only if the row vanished in between; never silently drop an item
            raise InvalidItemError(f"could not store {len(missing)} item(s); try again")

    for key, row in rows.items():
        _item, text, digest = prepared[key]
        ids[key] = row.id
        if row.content_hash == digest:
            dispositions[key] = Disposition.UNCHANGED
            continue
        # The row's patient is the item's (_resolve made sure): never reassigned here.
        row.record_json = text
        row.content_hash = digest
        requeue(row, now)
        dispositions[key] = Disposition.QUEUED
    session.flush()

    for chunk in _chunks(list(prepared.items()), CHUNK):
        session.execute(
            sync_request_item_table.insert(),
            [
                {
                    "request_id": request_id,
                    "ledger_id": ids[key],
                    "content_hash": digest,
                    "disposition": dispositions[key].value,
                    "patient_key": item.patient_key,
                }
                for key, (item, _text, digest) in chunk
            ],
        )
    return request_id


def _resolve(
    session: Session, prepared: dict[_Key, tuple[AcceptItem, str, str]]
) -> dict[_Key, LedgerEntry]:
    """The existing row of each item's record (locked), if any.

    The record is the row of the same id and the same patient, from either id space; a
    sender without a patient binding shares the app's id space, so that space's row of
    another patient is a refusal, never a takeover.
    """
    found: dict[_Key, LedgerEntry] = {}
    keys = list(prepared)
    for chunk_keys in _chunks(keys, CHUNK):
        candidates: dict[_Key, list[LedgerEntry]] = {}
        for row in session.scalars(
            select(LedgerEntry)
            .where(
                tuple_(LedgerEntry.namespace, LedgerEntry.kind, LedgerEntry.source_id).in_(
                    chunk_keys
                )
            )
            .order_by(LedgerEntry.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ):
            candidates.setdefault((row.namespace, row.kind, row.source_id), []).append(row)
        for key in chunk_keys:
            item = prepared[key][0]
            rows = candidates.get(key, [])
            same = [r for r in rows if r.patient_key == item.patient_key]
            if same:
                (found[key],) = same  # unique (namespace, kind, source_id, patient_key)
            elif not item.per_patient and any(r.patient_scope == "" for r in rows):
                raise PatientMismatchError(item.kind, item.source_id)
    return found


def requeue(row: LedgerEntry, now: datetime) -> None:
    """Put an entry back in the queue with a fresh attempt count, respecting a held lease."""
    row.status = LedgerStatus.QUEUED.value
    row.retract_requested = False
    row.attempts = 0
    row.last_error = None
    row.conflict_json = None
    row.queued_at = now
    row.updated_at = now
    # A worker may hold this entry right now: don't let a second one claim it before the lease
    # ends; the holder's report sees the new hash and queues it again.
    if row.claim_token is not None and row.lease_expires_at is not None:
        row.next_attempt_at = max(now, row.lease_expires_at)
    else:
        row.next_attempt_at = now


def requeue_failed(
    session: Session,
    ledger_ids: Iterable[int] | None = None,
    *,
    include_conflicts: bool = False,
    now: datetime | None = None,
) -> int:
    """Queue failed entries again (the given ids, or all); returns how many were queued.

    include_conflicts also re-queues conflicts, once someone decided ours should win.
    """
    now = now or utcnow()
    statuses = [LedgerStatus.FAILED.value]
    if include_conflicts:
        statuses.append(LedgerStatus.CONFLICT.value)
    query = select(LedgerEntry).where(LedgerEntry.status.in_(statuses))
    if ledger_ids is not None:
        id_list = list(ledger_ids)
        if not id_list:
            return 0
        query = query.where(LedgerEntry.id.in_(id_list))
    query = query.order_by(LedgerEntry.id).with_for_update()
    rows = session.scalars(query.execution_options(populate_existing=True)).all()
    for row in rows:
        if row.status == LedgerStatus.CONFLICT.value:
            _adopt_reviewed_versions(row)
        requeue(row, now)
    session.flush()
    return len(rows)


def _adopt_reviewed_versions(row: LedgerEntry) -> None:
    # Without this a requeued conflict is sent with If-Match on the version from before the
    # other edit and conflicts again, forever. The reviewer saw the server's copies kept with
    # the conflict ({"Type/id": {"theirs": resource, ...}}, as sync.push records it): ours may
    # replace exactly those versions, so an edit made after the review still conflicts.
    if not row.conflict_json:
        return
    copies = json.loads(row.conflict_json)
    for resource in row.resources:
        copy = copies.get(f"{resource.resource_type}/{resource.server_id}")
        theirs = copy.get("theirs") if isinstance(copy, dict) else None
        meta = theirs.get("meta") if isinstance(theirs, dict) else None
        version = meta.get("versionId") if isinstance(meta, dict) else None
        if isinstance(version, str):
            resource.version_id = version
            resource.etag = None


def _entry_query(
    namespace: str, kind: str, source_id: str, patients: Patients, patient: str | None
) -> Select[LedgerEntry]:
    query = select(LedgerEntry).where(
        LedgerEntry.namespace == namespace,
        LedgerEntry.kind == kind,
        LedgerEntry.source_id == source_id,
    )
    if patients.keys is not None:
        query = query.where(LedgerEntry.patient_key.in_(sorted(patients.keys)))
    if patient is not None:
        query = query.where(LedgerEntry.patient_key == patient)
    return query.order_by(LedgerEntry.id)


def _one_record(rows: Sequence[LedgerEntry], kind: str, source_id: str) -> LedgerEntry | None:
    # Several rows: patients of a patient-bound app chose the same id. The app's own id space
    # (a system sender's record) is what an unqualified id means; else the caller must choose.
    if len(rows) <= 1:
        return rows[0] if rows else None
    shared = [row for row in rows if row.patient_scope == ""]
    if len(shared) == 1:
        return shared[0]
    raise AmbiguousRecordError(kind, source_id)


def get_entry(
    session: Session,
    namespace: str,
    kind: str,
    source_id: str,
    *,
    patients: Patients,
    patient: str | None = None,
) -> EntryView | None:
    """Everything known about one source record of the given patients, or None.

    None too when the record exists for another patient only: the caller cannot tell.
    `patient` picks one patient's record where several patients use the same id.
    """
    rows = session.scalars(
        _entry_query(namespace, kind, source_id, patients, patient).execution_options(
            populate_existing=True
        )
    ).all()
    row = _one_record(rows, kind, source_id)
    return None if row is None else entry_view(row, utcnow())


def list_entries(
    session: Session, status: str, *, limit: int = 100, after_id: int = 0
) -> list[EntryView]:
    """Entries in one status (e.g. conflicts to review), by id, paged with after_id."""
    rows = session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.status == status, LedgerEntry.id > after_id)
        .order_by(LedgerEntry.id)
        .limit(limit)
    ).all()
    now = utcnow()
    return [entry_view(row, now) for row in rows]


def get_request(
    session: Session, request_id: str, *, client_id: str | None, patients: Patients
) -> RequestProgress | None:
    """Progress of an accepted request: its items of the given patients, their current state
    and counts per state.

    None when the request is unknown, was sent by another client (client_id None: any client),
    or has none of the given patients' records: the caller cannot tell which.
    """
    request = session.get(SyncRequest, request_id)
    if request is None or (client_id is not None and request.client_id != client_id):
        return None
    rows = session.execute(
        select(
            LedgerEntry.kind,
            LedgerEntry.source_id,
            LedgerEntry.status,
            LedgerEntry.content_hash,
            SyncRequestItem.content_hash.label("item_hash"),
            SyncRequestItem.disposition,
        )
        .join(SyncRequestItem, SyncRequestItem.ledger_id == LedgerEntry.id)
        .where(SyncRequestItem.request_id == request_id)
        .where(
            true()
            if patients.keys is None
            else SyncRequestItem.patient_key.in_(sorted(patients.keys))
        )
        .order_by(LedgerEntry.id)
    ).all()
    if patients.keys is not None and not rows:
        return None
    items = []
    counts: dict[str, int] = {}
    for row in rows:
        state = row.status if row.content_hash == row.item_hash else SUPERSEDED
        counts[state] = counts.get(state, 0) + 1
        items.append(RequestItemProgress(row.kind, row.source_id, row.disposition, state))
    return RequestProgress(
        request_id=request.id,
        client_id=request.client_id,
        item_count=request.item_count if patients.keys is None else len(items),
        created_at=request.created_at,
        counts=counts,
        items=tuple(items),
    )


def status_counts(session: Session, *, now: datetime | None = None) -> StatusCounts:
    """Entries per status, how many queued ones are under lease, and the oldest queued age."""
    now = now or utcnow()
    counts = {
        status: n
        for status, n in session.execute(
            select(LedgerEntry.status, func.count()).group_by(LedgerEntry.status)
        )
    }
    queued = LedgerEntry.status == LedgerStatus.QUEUED.value
    in_flight = session.scalar(
        select(func.count()).where(
            queued, LedgerEntry.claim_token.is_not(None), LedgerEntry.lease_expires_at > now
        )
    )
    oldest = session.scalar(select(func.min(LedgerEntry.queued_at)).where(queued))
    return StatusCounts(
        counts=counts,
        in_flight=in_flight or 0,
        oldest_queued_age_seconds=None if oldest is None else (now - oldest).total_seconds(),
    )


def entry_view(row: LedgerEntry, now: datetime) -> EntryView:
    """An EntryView of a loaded ledger row."""
    return EntryView(
        ledger_id=row.id,
        namespace=row.namespace,
        kind=row.kind,
        source_id=row.source_id,
        patient_key=row.patient_key,
        record=json.loads(row.record_json),
        content_hash=row.content_hash,
        status=row.status,
        in_flight=row.claim_token is not None
        and row.lease_expires_at is not None
        and row.lease_expires_at > now,
        attempts=row.attempts,
        last_error=json.loads(row.last_error) if row.last_error else None,
        conflict=json.loads(row.conflict_json) if row.conflict_json else None,
        sent_hash=row.sent_hash,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        resources=tuple(resource_state(r) for r in row.resources),
    )


def resource_state(row: LedgerResource) -> ResourceState:
    """A ResourceState of a loaded ledger_resource row."""
    return ResourceState(
        resource_type=row.resource_type,
        identifier_system=row.identifier_system,
        identifier_value=row.identifier_value,
        server_id=row.server_id,
        version_id=row.version_id,
        etag=row.etag,
        last_sent_hash=row.last_sent_hash,
    )


def _prepare(items: Sequence[AcceptItem]) -> dict[_Key, tuple[AcceptItem, str, str]]:
    prepared: dict[_Key, tuple[AcceptItem, str, str]] = {}
    for item in items:
        if item.kind not in _KINDS:
            raise InvalidItemError(f"unknown record kind {item.kind!r}")
        if not (item.namespace and item.source_id and item.patient_key):
            raise InvalidItemError("namespace, source_id and patient_key must not be empty")
        key = (item.namespace, item.kind, item.source_id)
        if key in prepared:
            raise DuplicateItemError(*key)
        if item.per_patient and not item.patient_key:
            raise InvalidItemError("a per-patient item needs its patient")
        text = canonical_json(item.record)
        prepared[key] = (item, text, text_hash(text))  # = content_hash(record), one dump less
    return prepared


def _insert_ignoring_conflicts(session: Session) -> Insert:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = ledger_entry_table
    # No conflict target: either unique key (the id space's, or the patient's) means someone
    # else stored this record first; _resolve then decides whether it is ours.
    return (
        insert(table)
        .on_conflict_do_nothing()
        .returning(table.c.id, table.c.namespace, table.c.kind, table.c.source_id)
    )


def _new_row(item: AcceptItem, text: str, digest: str, now: datetime) -> dict[str, Any]:
    return {
        "namespace": item.namespace,
        "kind": item.kind,
        "source_id": item.source_id,
        "patient_key": item.patient_key,
        "patient_scope": item.patient_key if item.per_patient else "",
        "record_json": text,
        "content_hash": digest,
        "status": LedgerStatus.QUEUED.value,
        "attempts": 0,
        "next_attempt_at": now,
        "queued_at": now,
        "created_at": now,
        "updated_at": now,
    }


def _chunks(seq: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def request_retraction(
    session: Session,
    namespace: str,
    kind: str,
    source_id: str,
    *,
    patients: Patients,
    patient: str | None = None,
    now: datetime | None = None,
) -> EntryView | None:
    """Queue the withdrawal of a record's resources (the app deleted it); None if unknown or
    another patient's.

    Runs in the caller's transaction; only what is committed may be acknowledged.
    """
    now = now or utcnow()
    rows = session.scalars(
        _entry_query(namespace, kind, source_id, patients, patient).with_for_update()
    ).all()
    row = _one_record(rows, kind, source_id)
    if row is None:
        return None
    if row.status != LedgerStatus.RETRACTED.value:
        requeue(row, now)
        row.retract_requested = True
    session.flush()
    return entry_view(row, now)

"""The worker's side of the ledger: claim a batch under a lease, then report each outcome."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session, selectinload

from service.store.clock import utcnow
from service.store.errors import LeaseLostError
from service.store.hashing import canonical_json
from service.store.ledger import requeue, resource_state
from service.store.models import (
    LedgerEntry,
    LedgerResource,
    LedgerStatus,
    SyncRequestItem,
    ledger_entry_table,
    ledger_resource_table,
    sync_request_item_table,
)
from service.store.values import ClaimedEntry, ErrorInfo, ResourceState

DEFAULT_MAX_ATTEMPTS = 8
HOLD_CHUNK = 500  # ids per statement: well under both backends' bound-parameter limits
_HELD = "diarybridge.outbox.held"  # Session.info key: rows hold_claims() locked and loaded
BACKOFF_BASE_SECONDS = 30.0
BACKOFF_CAP_SECONDS = 3600.0


def claim_batch(
    session: Session,
    worker_id: str,
    limit: int,
    lease_seconds: float,
    *,
    request_id: str | None = None,
    now: datetime | None = None,
) -> list[ClaimedEntry]:
    """Claim up to `limit` due entries for `lease_seconds`; commit promptly after the call.

    With `request_id`, only entries that sync request enqueued (a synchronous push delivers
    exactly what its caller sent, not other callers' queue).

    PostgreSQL: rows are locked FOR UPDATE SKIP LOCKED, so concurrent workers take disjoint
    rows. SQLite: the transaction began IMMEDIATE and holds the only write lock. Either way the
    claim is a lease: an entry whose worker died becomes due again when the lease ends.
    """
    now = now or utcnow()
    expires = now + timedelta(seconds=lease_seconds)
    table = ledger_entry_table
    due = select(LedgerEntry.id).where(
        LedgerEntry.status == LedgerStatus.QUEUED.value,
        LedgerEntry.next_attempt_at <= now,
    )
    if request_id is not None:
        due = due.where(
            LedgerEntry.id.in_(
                select(SyncRequestItem.ledger_id).where(SyncRequestItem.request_id == request_id)
            )
        )
    ids = list(
        session.scalars(
            due.order_by(LedgerEntry.next_attempt_at, LedgerEntry.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not ids:
        return []
    token = uuid.uuid4().hex
    rows = session.execute(
        update(table)
        .where(table.c.id.in_(ids))
        .values(
            claimed_by=worker_id,
            claim_token=token,
            lease_expires_at=expires,
            next_attempt_at=expires,  # due again only if the lease runs out
            attempts=table.c.attempts + 1,
            updated_at=now,
        )
        .returning(*table.c)
    ).all()
    resources: dict[int, list[ResourceState]] = {}
    for res in session.scalars(
        select(LedgerResource).where(LedgerResource.ledger_id.in_(ids)).order_by(LedgerResource.id)
    ):
        resources.setdefault(res.ledger_id, []).append(resource_state(res))
    claimed = [
        ClaimedEntry(
            ledger_id=row.id,
            namespace=row.namespace,
            kind=row.kind,
            source_id=row.source_id,
            patient_key=row.patient_key,
            record=json.loads(row.record_json),
            content_hash=row.content_hash,
            attempts=row.attempts,
            claimed_by=worker_id,
            claim_token=token,
            lease_expires_at=expires,
            resources=tuple(resources.get(row.id, ())),
            retract=bool(row.retract_requested),
            patient_scope=row.patient_scope,
        )
        for row in rows
    ]
    claimed.sort(key=lambda c: ids.index(c.ledger_id))
    return claimed


def mark_sent(
    session: Session,
    entry: ClaimedEntry,
    resources: Sequence[ResourceState],
    *,
    outcome: str | None = None,
    now: datetime | None = None,
) -> str:
    """Record a delivered entry and its resources' server ids/versions; returns the new status.

    `outcome` (created / updated / unchanged) is kept on every request item that enqueued this
    content and has none yet: whichever worker delivers, those requests can tell what happened.
    If new content arrived while the worker pushed, the entry is queued again instead of 'sent'.
    """
    status = _mark_delivered(session, entry, resources, LedgerStatus.SENT, now or utcnow())
    if outcome is not None:
        items = sync_request_item_table.c
        session.execute(
            update(sync_request_item_table)
            .where(
                items.ledger_id == entry.ledger_id,
                items.content_hash == entry.content_hash,
                items.outcome.is_(None),
            )
            .values(outcome=outcome)
        )
    return status


def mark_retracted(
    session: Session,
    entry: ClaimedEntry,
    resources: Sequence[ResourceState] = (),
    *,
    now: datetime | None = None,
) -> str:
    """Record that the entry's resources were withdrawn on the server; returns the new status."""
    return _mark_delivered(session, entry, resources, LedgerStatus.RETRACTED, now or utcnow())


def _mark_delivered(
    session: Session,
    entry: ClaimedEntry,
    resources: Sequence[ResourceState],
    status: LedgerStatus,
    now: datetime,
) -> str:
    row = _held(session, entry)
    _upsert_resources(session, row, resources, entry.content_hash, now)
    row.sent_hash = entry.content_hash
    _release(row, now)
    if row.content_hash == entry.content_hash:
        row.status = status.value
        row.last_error = None
    else:
        requeue(row, now)
    session.flush()
    return row.status


def mark_failed(
    session: Session,
    entry: ClaimedEntry,
    error: ErrorInfo,
    *,
    retryable: bool,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    retry_after_seconds: float | None = None,
    now: datetime | None = None,
) -> str:
    """Record a failed push: queued again after a backoff, or 'failed' when out of attempts.

    Attempts are counted at claim time, so a worker that crashes mid-push uses one up too.
    Returns the new status.
    """
    now = now or utcnow()
    row = _held(session, entry)
    _release(row, now)
    row.last_error = canonical_json(error.as_json())
    if row.content_hash != entry.content_hash:
        # The failure concerned content that has since been replaced: try the new one now.
        last_error = row.last_error
        requeue(row, now)
        row.last_error = last_error
    elif retryable and row.attempts < max_attempts:
        delay = max(backoff_seconds(row.attempts), retry_after_seconds or 0.0)
        row.status = LedgerStatus.QUEUED.value
        row.next_attempt_at = now + timedelta(seconds=delay)
    else:
        row.status = LedgerStatus.FAILED.value
    session.flush()
    return row.status


def mark_conflict(
    session: Session,
    entry: ClaimedEntry,
    server_version: dict[str, Any] | None,
    error: ErrorInfo | None = None,
    *,
    now: datetime | None = None,
) -> str:
    """Record that the server holds a version we did not expect; kept for review."""
    now = now or utcnow()
    row = _held(session, entry)
    _release(row, now)
    row.status = LedgerStatus.CONFLICT.value
    row.conflict_json = None if server_version is None else canonical_json(server_version)
    row.last_error = None if error is None else canonical_json(error.as_json())
    session.flush()
    return row.status


def renew_claims(
    session: Session,
    entries: Sequence[ClaimedEntry],
    lease_seconds: float,
    *,
    now: datetime | None = None,
) -> int:
    """Extend the lease of entries still held (the heartbeat of a running batch).

    Only rows whose claim token still matches are touched; returns how many were renewed.
    """
    if not entries:
        return 0
    now = now or utcnow()
    expires = now + timedelta(seconds=lease_seconds)
    table = ledger_entry_table
    renewed = 0
    for token in {e.claim_token for e in entries}:
        ids = sorted(e.ledger_id for e in entries if e.claim_token == token)
        result = session.execute(
            update(table)
            .where(table.c.id.in_(ids), table.c.claim_token == token)
            .values(lease_expires_at=expires, next_attempt_at=expires)
        )
        renewed += result.rowcount or 0
    return renewed


def release_claims(
    session: Session, entries: Sequence[ClaimedEntry], *, now: datetime | None = None
) -> int:
    """Give back entries not worked on (e.g. on shutdown): due now, the attempt not counted.

    Entries whose claim was already lost are skipped; returns how many were released.
    """
    now = now or utcnow()
    released = 0
    for entry in sorted(entries, key=lambda e: e.ledger_id):
        try:
            row = _held(session, entry)
        except LeaseLostError:
            continue
        _release(row, now)
        row.attempts = max(row.attempts - 1, 0)
        released += 1
    session.flush()
    return released


def hold_claims(session: Session, entries: Sequence[ClaimedEntry]) -> int:
    """Lock and load the rows of claimed entries, with their resources, in a few statements.

    For a batch of reports in one transaction: each mark_* / release_claims call that follows
    in this session then takes its row from here instead of a SELECT and a lazy load of its own.
    Whether the claim is still held is checked per report, as before. Returns the rows found.
    """
    held = _preloaded(session)
    if held is None:
        held = {}
        # Tied to this transaction: after it ends the locks are gone and the rows may be stale.
        session.info[_HELD] = (session.get_transaction(), held)
    ids = sorted({e.ledger_id for e in entries})
    for start in range(0, len(ids), HOLD_CHUNK):
        for row in session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.id.in_(ids[start : start + HOLD_CHUNK]))
            .order_by(LedgerEntry.id)  # the same lock order as every other writer
            .options(selectinload(LedgerEntry.resources))
            .with_for_update()
            .execution_options(populate_existing=True)
        ):
            held[row.id] = row
    return len(held)


def backoff_seconds(attempts: int) -> float:
    """Delay before the next try after `attempts` tries: 30 s doubling, at most one hour."""
    exponent = max(attempts - 1, 0)
    return float(min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** min(exponent, 20)))


def _held(session: Session, entry: ClaimedEntry) -> LedgerEntry:
    # Matching the token, not the expiry: a late report is still valid until someone re-claims.
    preloaded = _preloaded(session)
    if preloaded is not None and entry.ledger_id in preloaded:
        # Locked by hold_claims in this transaction, so nobody re-claimed it since; taken once
        # (a second report of the same entry reads the row again).
        row = preloaded.pop(entry.ledger_id)
        if row.claim_token != entry.claim_token:
            raise LeaseLostError(entry.ledger_id)
        return row
    row = session.scalars(
        select(LedgerEntry)
        .where(LedgerEntry.id == entry.ledger_id, LedgerEntry.claim_token == entry.claim_token)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if row is None:
        raise LeaseLostError(entry.ledger_id)
    return row


def _preloaded(session: Session) -> dict[int, LedgerEntry] | None:
    """The rows hold_claims locked in the session's current transaction, if it ran in it."""
    saved = session.info.get(_HELD)
    if saved is None or saved[0] is not session.get_transaction() or saved[0] is None:
        return None
    held: dict[int, LedgerEntry] = saved[1]
    return held


def _release(row: LedgerEntry, now: datetime) -> None:
    row.claimed_by = None
    row.claim_token = None
    row.lease_expires_at = None
    row.next_attempt_at = now
    row.updated_at = now


def _upsert_resources(
    session: Session,
    row: LedgerEntry,
    resources: Sequence[ResourceState],
    default_hash: str,
    now: datetime,
) -> None:
    if not resources:
        return  # don't load the relationship for nothing
    existing = {
        (r.resource_type, r.identifier_system, r.identifier_value): r.id for r in row.resources
    }
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for res in resources:
        key = (res.resource_type, res.identifier_system, res.identifier_value)
        values = {
            "server_id": res.server_id,
            "version_id": res.version_id,
            "etag": res.etag,
            "last_sent_hash": res.last_sent_hash or default_hash,
            "updated_at": now,
        }
        if key in existing:
            changed.append({"row_id": existing[key], **values})
        else:
            new.append(
                {
                    "ledger_id": row.id,
                    "resource_type": res.resource_type,
                    "identifier_system": res.identifier_system,
                    "identifier_value": res.identifier_value,
                    **values,
                }
            )
    # Two statements for the entry's resources (many parameter sets each), not one ORM insert
    # or update per resource: this was most of the cost of recording a push.
    table = ledger_resource_table
    if new:
        session.execute(insert(table), new)
    if changed:
        session.execute(
            update(table)
            .where(table.c.id == bindparam("row_id"))
            .values({name: bindparam(name) for name in changed[0] if name != "row_id"}),
            changed,
        )
    session.expire(row, ["resources"])  # written past the ORM: read again if asked

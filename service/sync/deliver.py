"""Deliver claimed ledger entries: push them, then record each outcome in the ledger."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence

from sqlalchemy.orm import Session, sessionmaker

from service import store
from service.observability import metrics
from service.store import ClaimedEntry, LeaseLostError
from service.sync.push import Delivery, Outcome, Pusher

log = logging.getLogger(__name__)


def record_delivery(session: Session, delivery: Delivery) -> None:
    """Write one push outcome to the ledger (in the caller's transaction)."""
    entry = delivery.entry
    if delivery.outcome in (Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED):
        store.mark_sent(session, entry, delivery.resources, outcome=delivery.outcome.value)
    elif delivery.outcome is Outcome.RETRACTED:
        store.mark_retracted(session, entry, delivery.resources)
    elif delivery.outcome is Outcome.CONFLICT:
        store.mark_conflict(session, entry, delivery.server_versions, delivery.error)
    else:
        assert delivery.error is not None
        store.mark_failed(
            session,
            entry,
            delivery.error,
            retryable=delivery.outcome is Outcome.RETRY,
            retry_after_seconds=delivery.retry_after,  # the server's wish outlasts our backoff
        )


def deliver(
    sessions: sessionmaker[Session], pusher: Pusher, entries: Sequence[ClaimedEntry]
) -> list[Delivery]:
    """Push claimed entries and record every outcome; a lost lease is logged and skipped."""
    started = time.monotonic()
    deliveries = pusher.push(entries)
    metrics.push_seconds(time.monotonic() - started)
    for outcome, count in Counter(d.outcome.value for d in deliveries).items():
        metrics.pushed(outcome, count)
    record_deliveries(sessions, deliveries)
    return deliveries


def record_deliveries(sessions: sessionmaker[Session], deliveries: Sequence[Delivery]) -> None:
    """Record a batch's outcomes in one transaction: one commit (one sync to disk) per batch.

    Each entry's report runs in its own savepoint, so a lease lost on one is skipped without
    undoing the others' records. Nothing is lost if the commit fails: the entries stay claimed
    until their lease ends, then go out again (writes are idempotent).
    """
    if not deliveries:
        return
    with sessions.begin() as session:
        # One locking read of all rows and their resources, not one SELECT + lazy load each.
        store.hold_claims(session, [d.entry for d in deliveries])
        for delivery in deliveries:
            try:
                with session.begin_nested():
                    if delivery.attempted:
                        record_delivery(session, delivery)
                    else:
                        # Never sent (time budget spent, circuit open): back in the queue as it was.
                        store.release_claims(session, [delivery.entry])
            except LeaseLostError:
                log.warning(
                    "lease on ledger entry %s was lost; another worker owns it",
                    delivery.entry.ledger_id,
                )

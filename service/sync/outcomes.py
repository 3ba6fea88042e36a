"""Each record's outcome in a sync request: facts about that request, whoever delivered it.

A worker other than the request's own (the in-process background one, a `diarybridge worker`)
may deliver a record between accept and the request's drain. The answer must then still say
`created` or `updated`: it is read from what the delivery of this request's content recorded
(sync_request_item.outcome), not from the ledger's current status.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from service import store
from service.store import RequestItemResult

# A later request replaced this request's content before it was delivered; that request's
# answer tells the record's fate.
SUPERSEDED = "superseded"
# Outcomes that leave this request's content off the server (for now or for good).
NOT_DELIVERED = frozenset({"queued", "failed", "conflict", SUPERSEDED})
# ... of which the entry's last error explains these (a superseded one's concerns newer content).
EXPLAINED = frozenset({"queued", "failed", "conflict"})


@dataclass(frozen=True)
class RecordOutcome:
    """One record of a request: its outcome, the error that explains it, its resources."""

    kind: str
    source_id: str
    outcome: str  # created | updated | unchanged | queued | failed | conflict | retracted | ...
    error: dict[str, Any] | None
    resources: tuple[store.ResourceState, ...]


def outcome_of(item: RequestItemResult) -> str:
    """This request's outcome for one item."""
    if item.delivered is not None:
        return item.delivered  # the delivery of exactly this content, by whichever worker
    if item.entry_hash != item.content_hash:
        return SUPERSEDED
    if item.status == store.LedgerStatus.SENT:
        # Sent, and no delivery of this content since this request came: it was on the server
        # before (the same content again), so nothing was sent.
        return "unchanged"
    return item.status  # queued, failed, conflict, retracted: as the ledger says now


def request_outcomes(
    sessions: sessionmaker[Session], request_id: str, *, with_resources: bool = True
) -> list[RecordOutcome]:
    """The outcome of every record of one request (that the caller made), by ledger id."""
    with sessions.begin() as session:
        items = store.request_results(session, request_id, with_resources=with_resources)
    results = []
    for item in items:
        outcome = outcome_of(item)
        results.append(
            RecordOutcome(
                kind=item.kind,
                source_id=item.source_id,
                outcome=outcome,
                error=item.last_error if outcome in EXPLAINED else None,
                resources=item.resources,
            )
        )
    return results

"""What a sync request's items came to: read back after delivery to answer that request."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from service.store.ledger import resource_state
from service.store.models import LedgerEntry, SyncRequestItem
from service.store.values import RequestItemResult


def request_results(
    session: Session, request_id: str, *, with_resources: bool = True
) -> list[RequestItemResult]:
    """Each item of one request with its delivery outcome and its entry's state, by ledger id.

    Callers pass the id of a request their caller made (e.g. just accepted): no access check.
    Without `with_resources` the server ids are not loaded (an import only counts).
    """
    query = (
        select(SyncRequestItem, LedgerEntry)
        .join(LedgerEntry, SyncRequestItem.ledger_id == LedgerEntry.id)
        .where(SyncRequestItem.request_id == request_id)
        .order_by(LedgerEntry.id)
        .execution_options(populate_existing=True)
    )
    if with_resources:
        query = query.options(selectinload(LedgerEntry.resources))
    rows = session.execute(query).all()
    return [
        RequestItemResult(
            kind=entry.kind,
            source_id=entry.source_id,
            disposition=item.disposition,
            content_hash=item.content_hash,
            delivered=item.outcome,
            status=entry.status,
            entry_hash=entry.content_hash,
            last_error=json.loads(entry.last_error) if entry.last_error else None,
            resources=tuple(resource_state(r) for r in entry.resources) if with_resources else (),
        )
        for item, entry in rows
    ]

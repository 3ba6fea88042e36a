"""A delivered batch is recorded in one transaction, each entry in its own savepoint."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from service.store import ResourceState, status_counts
from service.store.models import LedgerResource, SyncRequestItem
from service.sync.deliver import record_deliveries
from service.sync.push import Delivery, Outcome
from tests.integration.store.test_store_repository import (
    IDENT,
    T0,
    Factory,
    accept_now,
    claim,
    entry,
    item,
)


def resources(source_id: str) -> tuple[ResourceState, ...]:
    return tuple(
        ResourceState("Observation", IDENT, f"{source_id}-{k}", f"{source_id}-obs-{k}", "1", None)
        for k in range(9)
    )


def test_a_lost_lease_in_a_batch_leaves_the_others_recorded(factory: Factory) -> None:
    accept_now(factory, [item("e1"), item("e2"), item("e3")])
    mine = claim(factory, "w1", lease=30)
    # The lease ran out and another worker took e1 (the oldest) meanwhile.
    [taken] = claim(factory, "w2", limit=1, lease=300, at=T0 + timedelta(seconds=30))
    assert taken.source_id == "e1"

    record_deliveries(factory, [Delivery(e, Outcome.CREATED, resources(e.source_id)) for e in mine])

    for source_id in ("e2", "e3"):
        stored = entry(factory, source_id)
        assert stored.status == "sent" and stored.in_flight is False
        assert [r.server_id for r in stored.resources] == [f"{source_id}-obs-{k}" for k in range(9)]
    lost = entry(factory, "e1")
    assert lost.status == "queued" and lost.resources == ()  # still w2's, untouched
    with factory.begin() as session:
        rows = session.execute(
            select(SyncRequestItem.outcome, func.count()).group_by(SyncRequestItem.outcome)
        )
        outcomes = {outcome: n for outcome, n in rows}
        assert outcomes == {"created": 2, None: 1}
        assert session.scalar(select(func.count()).select_from(LedgerResource)) == 18
    # The new holder's report still counts.
    record_deliveries(factory, [Delivery(taken, Outcome.CREATED, resources("e1"))])
    with factory.begin() as session:
        assert status_counts(session).counts == {"sent": 3}


def test_a_batch_of_mixed_outcomes_is_recorded_like_one_report_each(factory: Factory) -> None:
    accept_now(factory, [item("a"), item("b"), item("c")])
    a, b, c = claim(factory, "w1", lease=60)
    record_deliveries(
        factory,
        [
            Delivery(a, Outcome.CREATED, resources("a")),
            Delivery(b, Outcome.CONFLICT, server_versions={"Observation/x": {"theirs": None}}),
            Delivery(c, Outcome.RETRY, attempted=False),  # never sent: back as it was
        ],
    )
    assert entry(factory, "a").status == "sent"
    assert entry(factory, "b").status == "conflict"
    released = entry(factory, "c")
    assert released.status == "queued" and released.in_flight is False
    assert released.attempts == 0  # the claim's attempt is given back

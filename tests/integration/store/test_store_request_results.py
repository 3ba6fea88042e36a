"""A delivery's outcome is kept for the requests that sent that content (SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from service.store import ErrorInfo, mark_failed, mark_sent, request_results
from service.sync.outcomes import outcome_of
from tests.integration.store.test_store_repository import (
    T0,
    Factory,
    accept_now,
    claim,
    item,
    observation,
)


def outcomes(factory: Factory, request_id: str) -> list[str]:
    with factory.begin() as session:
        return [outcome_of(i) for i in request_results(session, request_id)]


def test_each_request_learns_what_the_delivery_of_its_content_did(factory: Factory) -> None:
    first = accept_now(factory, [item("e1", fatigue=1), item("e2")])
    again = accept_now(factory, [item("e1", fatigue=1)], at=T0 + timedelta(seconds=1))
    held = claim(factory, "another-worker", at=T0 + timedelta(seconds=2))
    newer = accept_now(factory, [item("e1", fatigue=2)], at=T0 + timedelta(seconds=3))
    # In flight, replaced: unless its delivery completes, this content will never go.
    assert outcomes(factory, first) == ["superseded", "queued"]

    with factory.begin() as session:
        by_id = {h.source_id: h for h in held}
        at = T0 + timedelta(seconds=3)
        mark_sent(session, by_id["e1"], [observation("e1-f", "o1", "1")], outcome="created", now=at)
        error = ErrorInfo(status=422, code="invalid")
        mark_failed(session, by_id["e2"], error, retryable=False, now=at)

    # Delivered by a worker that is neither request's: still theirs to report.
    assert outcomes(factory, first) == ["created", "failed"]
    assert outcomes(factory, again) == ["created"]  # same content, enqueued before delivery
    assert outcomes(factory, newer) == ["queued"]  # its content is still to go
    with factory.begin() as session:
        (failed,) = [r for r in request_results(session, first) if r.source_id == "e2"]
    assert failed.last_error is not None and failed.last_error["status"] == 422

    [newest] = claim(factory, "w", at=T0 + timedelta(seconds=4))
    with factory.begin() as session:
        at = T0 + timedelta(seconds=4)
        mark_sent(session, newest, [observation("e1-f", "o1", "2")], outcome="updated", now=at)
    assert outcomes(factory, newer) == ["updated"]
    assert outcomes(factory, first) == ["created", "failed"]  # a fact once recorded stays
    late = accept_now(factory, [item("e1", fatigue=2)], at=T0 + timedelta(seconds=5))
    assert outcomes(factory, late) == ["unchanged"]  # on the server before this request came


def test_content_replaced_before_delivery_is_superseded(factory: Factory) -> None:
    first = accept_now(factory, [item("e1", fatigue=1)])
    accept_now(factory, [item("e1", fatigue=2)], at=T0 + timedelta(seconds=1))
    [held] = claim(factory, "w", at=T0 + timedelta(seconds=2))
    with factory.begin() as session:
        mark_sent(session, held, [], outcome="created", now=T0 + timedelta(seconds=2))
    assert outcomes(factory, first) == ["superseded"]

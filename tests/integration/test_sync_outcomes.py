"""Sync answers are facts about the request, whoever delivered its records (real FHIR server)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

import service.sync.requests as sync_requests
from service import wiring
from tests.integration.test_sync_push_pull import (
    BATCH,
    AppFactory,
    month_of_entries,
    new_client,
    outcomes,
    server,
    unique_patient,
)

pytestmark = pytest.mark.integration
__all__ = ["new_client", "server"]  # the fixtures, imported to be used here


def deliver_before_the_drain(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], int]:
    """Make another worker deliver each accepted request before the request's own drain.

    That is what the in-process background worker (or a `diarybridge worker`) does when it
    claims an entry in the moment between accept and the drain; here it happens every time.
    """
    runtime = wiring.of(client.application).sync
    real = sync_requests.accept_records
    delivered = 0

    def accept_then_deliver(*args: Any, **kwargs: Any) -> str:
        nonlocal delivered
        request_id = real(*args, **kwargs)
        delivered += len(runtime.worker(name="background").drain())
        return request_id

    monkeypatch.setattr(sync_requests, "accept_records", accept_then_deliver)
    return lambda: delivered


def test_a_record_another_worker_delivered_during_the_request_is_created_then_updated(
    new_client: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    patient = unique_patient("race")
    entries = month_of_entries(patient, days=3)
    client = new_client()
    background = deliver_before_the_drain(client, monkeypatch)

    first = client.post("/sync/diary-entries", json=entries, headers=BATCH)

    assert background() == 3  # the request's own drain found nothing left to do
    assert outcomes(first) == ["created"] * 3
    assert all(r["resources"] for r in first.json["results"])
    changed = [{**entries[0], "fatigue": (entries[0]["fatigue"] + 2) % 11}, *entries[1:]]
    second = client.post("/sync/diary-entries", json=changed, headers=BATCH)
    assert background() == 4
    assert outcomes(second) == ["updated", "unchanged", "unchanged"]
    third = client.post("/sync/diary-entries", json=changed, headers=BATCH)
    assert background() == 4 and outcomes(third) == ["unchanged"] * 3

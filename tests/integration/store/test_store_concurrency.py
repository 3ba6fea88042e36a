"""Several workers on one queue, a worker that dies holding claims, and concurrent accepts."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from textwrap import dedent

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from service.store import (
    AcceptItem,
    Patients,
    accept,
    claim_batch,
    get_entry,
    make_engine,
    make_session_factory,
    mark_sent,
    status_counts,
    upgrade,
)
from service.store.clock import utcnow
from service.store.models import LedgerEntry

Factory = sessionmaker[Session]
ROWS = 400
WORKERS = 4


def items(n: int, prefix: str = "e") -> list[AcceptItem]:
    """n synthetic diary entries."""
    return [
        AcceptItem(
            "diary-app", "diary-entry", f"{prefix}{i}", f"Patient/p{i % 7}", {"fatigue": i % 11}
        )
        for i in range(n)
    ]


def test_concurrent_workers_claim_every_row_exactly_once(factory: Factory) -> None:
    with factory.begin() as session:
        accept(session, "client-a", items(ROWS))
    claimed: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(WORKERS)

    def work(worker_id: str) -> None:
        mine: list[int] = []
        claimed[worker_id] = mine
        try:
            start.wait()
            while True:
                with factory.begin() as session:
                    batch = claim_batch(session, worker_id, 7, lease_seconds=300)
                if not batch:
                    return
                mine.extend(c.ledger_id for c in batch)
                time.sleep(0.001)  # the push; lets the other workers interleave
                with factory.begin() as session:
                    for c in batch:
                        mark_sent(session, c, [])
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert errors == []
    all_claims = [i for ids in claimed.values() for i in ids]
    duplicates = [i for i, n in Counter(all_claims).items() if n > 1]
    assert duplicates == []
    with factory.begin() as session:
        every_id = set(session.scalars(select(LedgerEntry.id)))
        counts = status_counts(session)
    assert set(all_claims) == every_id
    assert len(every_id) == ROWS
    assert counts.counts == {"sent": ROWS}
    # More than one worker did real work, so the claims did interleave.
    assert sum(1 for ids in claimed.values() if ids) > 1


def test_a_dead_workers_claims_come_back_after_the_lease(
    factory: Factory, database_url: str
) -> None:
    with factory.begin() as session:
        accept(session, "client-a", items(5))
    lease = 120
    # A real worker process claims, commits and dies without reporting.
    script = dedent(
        f"""
        import os
        from service.store import make_engine, make_session_factory, claim_batch
        factory = make_session_factory(make_engine({database_url!r}))
        with factory.begin() as session:
            claimed = claim_batch(session, "doomed", 3, lease_seconds={lease})
        print(",".join(c.source_id for c in claimed), flush=True)
        os._exit(9)
        """
    )
    died = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert died.returncode == 9, died.stderr
    taken = set(died.stdout.strip().split(","))
    assert len(taken) == 3

    now = utcnow()
    with factory.begin() as session:
        before = claim_batch(session, "w2", 10, lease_seconds=lease * 10, now=now)
    assert {c.source_id for c in before} == {"e0", "e1", "e2", "e3", "e4"} - taken

    after_expiry = now + timedelta(seconds=lease + 1)
    with factory.begin() as session:
        after = claim_batch(session, "w3", 10, lease_seconds=60, now=after_expiry)
        stored = get_entry(
            session, "diary-app", "diary-entry", sorted(taken)[0], patients=Patients.every()
        )
    assert {c.source_id for c in after} == taken
    assert all(c.attempts == 2 for c in after)
    assert stored is not None and stored.in_flight is True


def test_concurrent_accepts_of_the_same_records_make_one_row_each(factory: Factory) -> None:
    batch = items(200, prefix="shared")
    errors: list[BaseException] = []
    request_ids: list[str] = []
    start = threading.Barrier(3)

    def post() -> None:
        try:
            start.wait()
            with factory.begin() as session:
                request_ids.append(accept(session, "client-a", batch))
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=post) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert errors == []
    assert len(set(request_ids)) == 3
    with factory.begin() as session:
        assert session.scalar(select(func.count()).select_from(LedgerEntry)) == 200
        assert status_counts(session).counts == {"queued": 200}


def test_accepts_with_the_same_records_in_opposite_orders_do_not_deadlock(
    factory: Factory,
) -> None:
    batch = items(300, prefix="both")
    orders = [batch, list(reversed(batch))] * 2
    errors: list[BaseException] = []
    start = threading.Barrier(len(orders))

    def post(order: list[AcceptItem]) -> None:
        try:
            start.wait()
            with factory.begin() as session:
                accept(session, "client-a", order)
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(order,)) for order in orders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert errors == []
    with factory.begin() as session:
        assert session.scalar(select(func.count()).select_from(LedgerEntry)) == 300


def test_postgresql_skips_rows_locked_by_an_open_claim(postgres_url: str) -> None:
    upgrade(postgres_url)
    engine = make_engine(postgres_url)
    factory = make_session_factory(engine)
    try:
        with factory.begin() as session:
            accept(session, "client-a", items(6))
        with factory.begin() as slow:
            first = claim_batch(slow, "w1", 3, lease_seconds=60)
            # w1 has not committed: its rows are locked, yet w2 gets the others at once.
            with factory.begin() as fast:
                fast.execute(text("SET LOCAL lock_timeout = '2s'"))
                second = claim_batch(fast, "w2", 10, lease_seconds=60)
        assert [c.source_id for c in first] == ["e0", "e1", "e2"]
        assert [c.source_id for c in second] == ["e3", "e4", "e5"]
    finally:
        engine.dispose()

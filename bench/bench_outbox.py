"""Outbox throughput: accept N synthetic entries, then W workers claim and mark them sent.

Prints figures for SQLite (a temp file) and, if given, PostgreSQL:

    .venv/bin/python bench/bench_outbox.py [--n 5000] [--workers 4] [--batch 50]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--record-n 2000]

Then the worker's ledger recording after a push, in the same run: `created` outcomes with 9
resources each, recorded one transaction per entry (as deliver did before) and as
deliver.record_deliveries does now (one transaction per batch, a savepoint per entry); the
ratio of the two rates is the figure to compare across runs.

For PostgreSQL the script creates and drops its own database next to the one in the URL.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from service.store import (
    AcceptItem,
    ResourceState,
    accept,
    claim_batch,
    make_engine,
    make_session_factory,
    mark_sent,
    status_counts,
    upgrade,
)
from service.sync.deliver import record_deliveries
from service.sync.push import Delivery, Outcome

ACCEPT_CHUNK = 500  # items per accept() call, like one large POST


def synthetic_items(n: int) -> list[AcceptItem]:
    """n synthetic diary entries of realistic size."""
    return [
        AcceptItem(
            namespace="bench-app",
            kind="diary-entry",
            source_id=f"entry-{i}",
            patient_key=f"Patient/synthetic-{i % 50}",
            record={
                "entry_id": f"entry-{i}",
                "recorded_at": "2026-03-01T07:00:00+00:00",
                "mg_adl": dict.fromkeys(("talking", "chewing", "swallowing", "breathing"), i % 4),
                "fatigue": i % 11,
                "symptoms": [{"symptom": "ptosis", "severity": "mild"}],
            },
        )
        for i in range(n)
    ]


def run(url: str, n: int, workers: int, batch: int) -> None:
    """Time accept and the claim/mark_sent loop on one database."""
    upgrade(url)
    engine = make_engine(url, pool_size=workers + 2)
    factory = make_session_factory(engine)
    items = synthetic_items(n)

    started = time.perf_counter()
    for start in range(0, n, ACCEPT_CHUNK):
        with factory.begin() as session:
            accept(session, "bench", items[start : start + ACCEPT_CHUNK])
    accept_s = time.perf_counter() - started

    claimed = [0] * workers

    def work(index: int) -> None:
        while True:
            with factory.begin() as session:
                entries = claim_batch(session, f"w{index}", batch, lease_seconds=300)
            if not entries:
                return
            with factory.begin() as session:
                for entry in entries:
                    mark_sent(session, entry, [])
            claimed[index] += len(entries)

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    deliver_s = time.perf_counter() - started

    with factory.begin() as session:
        counts = status_counts(session).counts
    engine.dispose()
    backend = make_url(url).get_backend_name()
    print(
        f"{backend:10s} n={n} workers={workers} batch={batch}  "
        f"accept {n / accept_s:8.0f} entries/s ({accept_s:.2f} s)  "
        f"claim+mark_sent {sum(claimed) / deliver_s:8.0f} entries/s ({deliver_s:.2f} s)  "
        f"per worker {claimed}  final {counts}"
    )


def sent_resources(source_id: str) -> tuple[ResourceState, ...]:
    """What a diary entry's push leaves in the ledger: about nine resources with server ids."""
    return tuple(
        ResourceState(
            resource_type="Observation",
            identifier_system="urn:bench:identifier",
            identifier_value=f"{source_id}/{k}",
            server_id=f"{source_id}-{k}",
            version_id="1",
            etag=None,
            last_sent_hash=f"{k:064d}",
        )
        for k in range(9)
    )


def run_recording(url: str, n: int, batch: int) -> None:
    """Time recording pushed outcomes: per-entry transactions, then one per batch."""
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    items = synthetic_items(2 * n)
    for start in range(0, 2 * n, ACCEPT_CHUNK):
        with factory.begin() as session:
            accept(session, "bench-record", items[start : start + ACCEPT_CHUNK])

    def batches() -> Iterator[list[Delivery]]:
        while True:
            with factory.begin() as session:
                entries = claim_batch(session, "recorder", batch, lease_seconds=300)
            if not entries:
                return
            yield [Delivery(e, Outcome.CREATED, sent_resources(e.source_id)) for e in entries]

    rates = {}
    for label in ("per entry", "per batch"):
        done = 0
        started = time.perf_counter()
        for deliveries in batches():
            if label == "per entry":
                for d in deliveries:
                    with factory.begin() as session:
                        mark_sent(session, d.entry, d.resources, outcome=d.outcome.value)
            else:
                record_deliveries(factory, deliveries)
            done += len(deliveries)
            if done >= n:
                break
        rates[label] = done / (time.perf_counter() - started)
    with factory.begin() as session:
        counts = status_counts(session).counts
    engine.dispose()
    backend = make_url(url).get_backend_name()
    print(
        f"{backend:10s} record n={n} batch={batch}  per entry {rates['per entry']:7.0f} "
        f"entries/s  per batch {rates['per batch']:7.0f} entries/s  "
        f"ratio {rates['per batch'] / rates['per entry']:5.1f}x  final {counts}"
    )


@contextmanager
def scratch_postgres(admin_url: str) -> Iterator[str]:
    """A throwaway PostgreSQL database beside the one in admin_url."""
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"diarybridge_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    """Parse arguments and run on each backend."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server to bench as well")
    parser.add_argument("--record-n", type=int, default=2000, help="entries per recording way")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}", args.n, args.workers, args.batch)
    with tempfile.TemporaryDirectory() as tmp:
        run_recording(f"sqlite:///{Path(tmp) / 'record.sqlite3'}", args.record_n, args.batch)
    if args.postgres:
        with scratch_postgres(args.postgres) as url:
            run(url, args.n, args.workers, args.batch)
        with scratch_postgres(args.postgres) as url:
            run_recording(url, args.record_n, args.batch)


if __name__ == "__main__":
    main()

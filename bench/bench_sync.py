"""Push and pull throughput of sync against the real test FHIR server (Medplum's router).

    .venv/bin/python bench/bench_sync.py [--records 150] [--pull-observations 10000]
        [--only push|pull] [--skip-single]

Push: synthetic diary entries are accepted into a SQLite ledger and delivered by the worker
(claim -> map -> push -> record in the ledger), once per strategy, each on fresh resources:
transaction Bundles of update-as-create PUTs, one request per resource (a Pusher whose transport
is forced to single: Pusher only lets the method be configured), and conditional create
(If-None-Exist) in transactions of 8 entries (Medplum's cap for conditional entries) and one by
one. Pull: loads enough diary entries for --pull-observations Observations, then times
pull_records (search + map back to records) at the old fixed _count=200 and at the default
(the largest the server allows), and a bare client.search over the Observations at both.
Prints figures; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.fhir_client import FhirClient, PushStrategy
from service.schemas import RecordKind
from service.store import make_engine, make_session_factory, upgrade
from service.sync.accept import accept_records
from service.sync.pull import PullWindow, pull_records
from service.sync.push import Pusher
from service.sync.worker import Worker
from tests.fhir_server import start_fhir_server
from tests.integration.durability.helpers import diary_payloads, expected_identifiers, records_of


class SinglePusher(Pusher):
    """A Pusher that sends one request per resource whatever the server offers."""

    def strategy(self) -> PushStrategy:
        """The usual method, but the single-request transport."""
        return replace(super().strategy(), transport="single")


def push(base_url: str, label: str, records: int, method: str, chunk: int, single: bool) -> None:
    """Accept `records` new diary entries and time one worker draining them; print the rate."""
    namespace = f"bench-{label}"
    given = records_of(diary_payloads(f"synthetic-bench-{label}-{time.time_ns()}", records))
    resources = len(expected_identifiers(given, namespace))
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/ledger.sqlite3"
        upgrade(url)
        sessions = make_session_factory(make_engine(url))
        accept_records(sessions, namespace, given)
        client = FhirClient(base_url)
        client.capabilities()  # fetched once per worker anyway: not part of the rate
        kind = SinglePusher if single else Pusher
        worker = Worker(
            sessions, lambda: kind(client, chunk_size=chunk, method=method), batch_size=200
        )
        cpu, started = time.process_time(), time.perf_counter()
        delivered = worker.drain()
        took, cpu = time.perf_counter() - started, time.process_time() - cpu
        client.close()
    outcomes = {d.outcome.value for d in delivered}
    transport = "single" if single else f"transaction of <= {chunk}"
    print(
        f"push {method:<18} {transport:<22} {records} records = {resources} resources "
        f"in {took:6.2f} s: {resources / took:7.0f} resources/s, our CPU {cpu:5.2f} s "
        f"{sorted(outcomes)}"
    )


def pull(base_url: str, observations: int) -> None:
    """Load diary entries for `observations` Observations, then time pulling them back."""
    from service.sync.pull import page_size as pull_page_size

    per_entry = sum(
        1
        for kind, *_ in expected_identifiers(records_of(diary_payloads("synthetic-probe", 1)))
        if kind == "Observation"
    )
    patient = f"synthetic-bench-pull-{time.time_ns()}"
    entries = -(-observations // per_entry)
    given = records_of(diary_payloads(patient, entries))
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/ledger.sqlite3"
        upgrade(url)
        sessions = make_session_factory(make_engine(url))
        accept_records(sessions, "bench-pull", given)
        with FhirClient(base_url) as client:
            started = time.perf_counter()
            Worker(sessions, lambda: Pusher(client, chunk_size=50), batch_size=200).drain()
            print(f"loaded {entries} diary entries in {time.perf_counter() - started:.1f} s")
    with FhirClient(base_url) as client:
        for size in (200, pull_page_size(client)):
            cpu, started = time.process_time(), time.perf_counter()
            found = sum(
                1
                for _ in client.search(
                    "Observation", {"subject": f"Patient/{patient}"}, page_size=size
                )
            )
            took, cpu = time.perf_counter() - started, time.process_time() - cpu
            print(
                f"search Observation        {found} resources in {took:6.2f} s: "
                f"{found / took:7.0f} resources/s, our CPU {cpu:5.2f} s (pages of {size})"
            )
        for size in (200, None):
            cpu, started = time.process_time(), time.perf_counter()
            pulled = pull_records(
                client, f"Patient/{patient}", RecordKind.DIARY_ENTRY, PullWindow(), count=size
            )
            took, cpu = time.perf_counter() - started, time.process_time() - cpu
            total = found + entries  # pull_records also reads each entry's MedicationAdministration
            print(
                f"pull_records diary       {len(pulled.records)} records from {total} resources "
                f"in {took:6.2f} s: {total / took:7.0f} resources/s, "
                f"{len(pulled.records) / took:5.0f} records/s, our CPU {cpu:5.2f} s "
                f"({pulled.unreadable} unreadable; pages of {size or pull_page_size(client)})"
            )


def main() -> None:
    """Start a memory-only test server, run each measurement, print figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=150, help="diary entries per push run")
    parser.add_argument("--pull-observations", type=int, default=10_000)
    parser.add_argument("--only", choices=("push", "pull"), help="run one half only")
    parser.add_argument("--skip-single", action="store_true", help="no one-by-one push runs")
    args = parser.parse_args()
    server = start_fhir_server(persist=False)
    try:
        n = args.records
        if args.only != "pull":
            push(server.base_url, "tx-uac", n, "update-as-create", 50, single=False)
            if not args.skip_single:
                push(server.base_url, "single-uac", n, "update-as-create", 50, single=True)
            push(server.base_url, "tx-cc", n, "conditional-create", 8, single=False)
            if not args.skip_single:
                push(server.base_url, "single-cc", n, "conditional-create", 8, single=True)
        if args.only != "push":
            pull(server.base_url, args.pull_observations)
    finally:
        server.stop()


if __name__ == "__main__":
    main()

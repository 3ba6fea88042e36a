"""Export throughput of $export and of paged search, each as a ratio to raw paged GETs.

    .venv/bin/python bench/bench_export_paths.py [--resources 2000] [--repeat 3]

Loads the same synthetic resources into SEKMET (which has $export) and Medplum's router (which
has not), then times, per server: raw paged GETs of every type (`_count=1000`, following
`next`, JSON parsed, nothing else: the floor of what reading the data costs), run_export by
paged search, and on SEKMET run_export by $export. Each export's throughput is printed as a
ratio to that server's raw GETs (1.0 = as fast as just reading the pages; best of --repeat).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.exports import export_request, run_export
from service.fhir_client import FhirClient
from tests.fhir_server import start_fhir_server
from tests.sekmet_server import start_sekmet_server
from tests.unit.exports.export_synthetic import batch_put, resources

TYPES = ("Observation", "MedicationAdministration")


def raw_paged_gets(base_url: str) -> int:
    """Every resource of TYPES by plain GETs of search pages; returns how many."""
    count = 0
    with requests.Session() as http:
        for resource_type in TYPES:
            url: str | None = f"{base_url}/{resource_type}?_count=1000"
            while url:
                bundle = http.get(url, headers={"Accept": "application/fhir+json"}).json()
                count += len(bundle.get("entry", []))
                url = next(
                    (x["url"] for x in bundle.get("link", []) if x["relation"] == "next"), None
                )
    return count


def export(base_url: str, use_bulk: bool) -> int:
    """One fhir-format export of every type into a temp folder; returns how many resources."""
    with tempfile.TemporaryDirectory() as tmp, FhirClient(base_url) as fhir:
        manifest = run_export(
            fhir,
            export_request({"format": "fhir"}),
            Path(tmp),
            url_for=str,
            requires_access_token=False,
            use_bulk=use_bulk,
        )
    assert manifest["extension"]["fetchedBy"] == ("bulk" if use_bulk else "search")
    return sum(o["count"] for o in manifest["output"])


def best(repeat: int, run: Callable[[], int]) -> tuple[float, int]:
    """The best wall time of `repeat` runs, and the count the last run gave."""
    times, count = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        count = run()
        times.append(time.perf_counter() - started)
    return min(times), count


def main() -> None:
    """Load both servers, time each path, print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = resources(args.resources // 7 + 1)[: args.resources]  # ~7 resources a record
    with tempfile.TemporaryDirectory() as tmp:
        sekmet = start_sekmet_server(data_dir=Path(tmp) / "sekmet")
        medplum = start_fhir_server(persist=False)
        try:
            for server in (sekmet, medplum):
                with FhirClient(server.base_url) as fhir:
                    batch_put(fhir, data)
            print(f"{len(data)} resources on each server; best of {args.repeat} runs")
            for name, base, paths in (
                ("SEKMET", sekmet.base_url, (("$export", True), ("paged search", False))),
                ("Medplum", medplum.base_url, (("paged search", False),)),
            ):
                raw, count = best(args.repeat, lambda b=base: raw_paged_gets(b))
                assert count == len(data), (name, count)
                print(f"{name:8} raw paged GETs : {raw:6.2f} s ({count / raw:7.0f} resources/s)")
                for label, use_bulk in paths:
                    took, count = best(args.repeat, lambda b=base, u=use_bulk: export(b, u))
                    assert count == len(data), (name, label, count)
                    print(
                        f"{name:8} {label:15}: {took:6.2f} s ({count / took:7.0f} resources/s)"
                        f" = {raw / took:.2f} x raw GETs"
                    )
        finally:
            sekmet.stop()
            medplum.stop()


if __name__ == "__main__":
    main()

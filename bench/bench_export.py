"""Export throughput and peak memory against the real test FHIR server (Medplum's router).

    .venv/bin/python bench/bench_export.py [--resources 100000] [--formats fhir,records,csv]

Loads synthetic resources (mappings.to_resources of generated records, batch PUTs of 500), then
exports them with service.exports.run_export by paged search (the test server has no $export)
and prints resources/s and peak memory: tracemalloc's peak of Python allocations during the
export (run separately from the timed run, as tracing slows Python down) and the process's
ru_maxrss. A patient-filtered export (one patient in five) shows that memory does not grow
with the number of resources.
"""

from __future__ import annotations

import argparse
import itertools
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mappings
from service.exports import export_request, run_export
from service.fhir_client import FhirClient
from tests.fhir_server import start_fhir_server
from tests.unit.exports.export_synthetic import CTX, batch_put, records

PATIENTS = 5


def load(fhir: FhirClient, wanted: int) -> int:
    """Generate and PUT records until `wanted` resources are on the server (chunk by chunk)."""
    loaded = 0
    stream = records(wanted, patients=PATIENTS)  # ~7 resources a record: more than enough
    while loaded < wanted:
        chunk = list(itertools.islice(stream, 100))
        items = mappings.to_resources(chunk, CTX)[: wanted - loaded]
        loaded += batch_put(fhir, items)
    return loaded


def export(
    base_url: str, body: dict[str, object], out: Path, trace: bool
) -> tuple[int, float, float, int]:
    """One export; returns (files' count, wall s, our CPU s, tracemalloc peak bytes or 0)."""
    if trace:
        tracemalloc.start()
    cpu = time.process_time()
    started = time.perf_counter()
    with FhirClient(base_url) as fhir:
        manifest = run_export(
            fhir, export_request(body), out, url_for=str, requires_access_token=False
        )
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    peak = 0
    if trace:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    count = sum(o["count"] for o in manifest["output"])
    return count, seconds, cpu, peak


def main() -> None:
    """Load, export, print figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--formats", default="fhir,records,csv")
    args = parser.parse_args()
    server = start_fhir_server(persist=False)
    try:
        with FhirClient(server.base_url) as fhir:
            started = time.perf_counter()
            loaded = load(fhir, args.resources)
            took = time.perf_counter() - started
        print(f"loaded {loaded} resources in {took:.1f} s ({loaded / took:.0f}/s, batch PUT)")
        with tempfile.TemporaryDirectory() as tmp:
            for fmt in args.formats.split(","):
                out = Path(tmp) / fmt
                count, seconds, cpu, _ = export(server.base_url, {"format": fmt}, out, False)
                size = sum(p.stat().st_size for p in out.iterdir()) / 1e6
                # Wall time includes the server's search work; CPU time is this process alone.
                print(
                    f"export {fmt:7}: {count:6d} out in {seconds:6.1f} s wall "
                    f"({loaded / seconds:6.0f} resources/s), {cpu:6.1f} s our CPU "
                    f"({loaded / cpu:6.0f} resources/s), {size:.1f} MB on disk"
                )
            for label, body in (
                ("all", {"format": "fhir"}),
                ("1 patient of 5", {"format": "fhir", "patient": "Patient/synthetic-export-0000"}),
                ("records, all", {"format": "records"}),
            ):
                count, _, _, peak = export(server.base_url, body, Path(tmp) / "m", trace=True)
                print(f"peak Python memory ({label}, {count} out): {peak / 1e6:.1f} MB")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"process ru_maxrss (whole run, load included): {rss:.0f} MB")
    finally:
        server.stop()


if __name__ == "__main__":
    main()

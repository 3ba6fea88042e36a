"""Bulk import throughput (entries/s) and peak memory, on synthetic files.

    .venv/bin/python bench/bench_import.py [--n 100000] [--small 10000] [--push-n 5000]
        [--fhir-base-url URL]

Figures, each from a fresh child process (so peak RSS is the import's own):
  * accept only (--no-push): NDJSON and CSV files of --small and --n entries, into a SQLite
    outbox in a temp dir. Peak RSS at both sizes shows whether memory stays flat.
  * push: --push-n entries imported and pushed to a FHIR server (the test server this script
    starts, Medplum's router in Node, unless --fhir-base-url is given), then the same import
    again (all unchanged).
Rates include reading, validation, the outbox transactions and (push) the FHIR requests, but
not the interpreter's start-up.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PATIENTS = 200  # entries spread over this many synthetic patients


def write_ndjson(path: Path, n: int) -> None:
    """n synthetic diary entries, one JSON object per line, written as generated."""
    from tests.unit.imports.synthetic import diary_entries

    per_patient = -(-n // PATIENTS)
    with path.open("w") as out:
        written = 0
        for p in range(PATIENTS):
            for entry in diary_entries(f"Patient/synthetic-bench-{p:04d}", per_patient, seed=p):
                if written == n:
                    return
                out.write(json.dumps(entry) + "\n")
                written += 1


def write_csv(ndjson: Path, path: Path) -> None:
    """The same entries in the CSV layout (as `diarybridge export --format csv` writes it)."""
    from service.exports.csv_columns import DIARY_COLUMNS, header, row
    from service.schemas import RecordKind, load_records

    with ndjson.open() as source, path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header(DIARY_COLUMNS))
        for line in source:
            item = json.loads(line)
            item.pop("medications", None)  # CSV carries medication names only
            writer.writerow(row(DIARY_COLUMNS, load_records(item, RecordKind.DIARY_ENTRY)[0]))


def child(path: str, db: str, fhir: str | None) -> None:
    """Import one file in this process and print its figures as JSON."""
    from service import store
    from service.config import FhirServerSettings
    from service.imports import Importer
    from service.sync.runtime import SyncRuntime

    engine = store.make_engine(f"sqlite:///{db}")
    store.upgrade(engine)
    sessions = store.make_session_factory(engine)
    worker = None
    if fhir:
        worker = SyncRuntime(FhirServerSettings(base_url=fhir), sessions).worker()
    from peak_rss import own_peak_rss_kb  # bench/ is this script's own folder on sys.path

    before = own_peak_rss_kb()
    importer = Importer(sessions, "bench-import", worker=worker)
    started = time.perf_counter()
    importer.import_path(path)
    summary = importer.finish()
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": seconds,
                "summary": summary.line(),
                "read": summary.read,
                "rss_before_kb": before,
                "rss_peak_kb": own_peak_rss_kb(),
            }
        )
    )


def measure(label: str, path: Path, db: Path, fhir: str | None = None) -> dict[str, float]:
    """Run one import in a child process; print entries/s and its peak RSS."""
    command = [sys.executable, __file__, "--child", str(path), str(db)]
    if fhir:
        command += ["--child-fhir", fhir]
    env = {**os.environ, "DIARYBRIDGE_LOG_LEVEL": "WARNING"}
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    rate = figures["read"] / figures["seconds"]
    size_mb = path.stat().st_size / 1e6
    print(
        f"{label:<34} {figures['read']:>8} entries {size_mb:7.1f} MB  {figures['seconds']:7.1f} s"
        f"  {rate:8.0f} entries/s  peak RSS {figures['rss_peak_kb'] / 1024:6.0f} MB"
        f" (at start {figures['rss_before_kb'] / 1024:.0f} MB)  | {figures['summary']}"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--push-n", type=int, default=5_000, help="0: no push figures")
    parser.add_argument("--fhir-base-url")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--child-fhir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.child_fhir)
        return

    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        work = Path(tmp)
        print(f"python {sys.version.split()[0]}, SQLite outbox in a temp dir, batches of 500")
        for n in (args.small, args.n):
            ndjson, table = work / f"diary-{n}.ndjson", work / f"diary-{n}.csv"
            write_ndjson(ndjson, n)
            write_csv(ndjson, table)
            measure(f"accept only, NDJSON, {n}", ndjson, work / f"ndjson-{n}.sqlite3")
            measure(f"accept only, CSV, {n}", table, work / f"csv-{n}.sqlite3")
            measure(f"accept only, NDJSON again, {n}", ndjson, work / f"ndjson-{n}.sqlite3")
        if args.push_n:
            server = None
            fhir = args.fhir_base_url
            if not fhir:
                from tests.fhir_server import start_fhir_server

                server = start_fhir_server(data_dir=work / "fhir")
                fhir = server.base_url
            try:
                ndjson = work / f"push-{args.push_n}.ndjson"
                write_ndjson(ndjson, args.push_n)
                db = work / "push.sqlite3"
                measure(f"import + push, {args.push_n}", ndjson, db, fhir)
                measure(f"same import again, {args.push_n}", ndjson, db, fhir)
            finally:
                if server is not None:
                    server.stop()


if __name__ == "__main__":
    main()

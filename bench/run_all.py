"""Every speed row of issue 12, each as a ratio against its reference timed in the same run.

    .venv/bin/python bench/run_all.py [--size tiny|default|full|big]

Starts its own FHIR server (Medplum's router, tests/fhir_server, memory only) and two gunicorn
instances on 127.0.0.1, runs each path beside its reference and prints one table:
path | ours | reference | ratio | goal | met?. A ratio is ours / reference for rates and
reference / ours for latencies, so higher is better and 1.0 means "as fast as the reference".
Absolute rates move 2x between runs on a shared machine; the ratios are what to compare.

Sizes: `tiny` only proves the scripts run (seconds; tests/integration/test_bench_run_all.py);
`default` runs in a few minutes on 2 cores; `full` uses the issue's sizes (100,000 entries
imported, 10,000 converted); `big` checks memory at 1,000,000 imported entries.

Needs orjson (`pip install -e '.[bench]'`): the references parse and write JSON with it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_import  # noqa: E402  (bench/ is on the path above)
from bench_convert_cli import synthetic_entry  # noqa: E402

import mappings  # noqa: E402
from mappings.context import FhirVersion, MappingContext  # noqa: E402
from mappings.diary import diary_entry_to_observations  # noqa: E402
from mappings.infusion import infusion_record_to_resources  # noqa: E402
from mappings.records import DiaryEntry, Record  # noqa: E402
from service.config import FhirServerSettings  # noqa: E402
from service.fhir_client import FhirClient  # noqa: E402
from service.schemas import RecordKind, load_records  # noqa: E402
from service.store import make_engine, make_session_factory, upgrade  # noqa: E402
from service.sync.accept import accept_records  # noqa: E402
from service.sync.pull import PullWindow, pull_records  # noqa: E402
from service.sync.runtime import SyncRuntime  # noqa: E402
from tests.conftest import KEYS, make_env  # noqa: E402
from tests.fhir_server import free_port, start_fhir_server  # noqa: E402
from tests.integration.durability.helpers import diary_payloads, records_of  # noqa: E402
from tests.unit.exports.export_synthetic import batch_put, records  # noqa: E402

MEMORY_LIMIT_MB = 200.0
CLIENTS = 16  # concurrent HTTP clients, as in the issue
TRANSACTION = 50  # the push reference's Bundle size (the test server's cap)
RAW_PAGE = 1000  # the pull reference's page size


@dataclass(frozen=True)
class Size:
    convert_records: int  # records converted in-process
    cli_entries: int  # entries through `diarybridge convert`
    push_entries: int  # diary entries pushed (ours) and PUT (reference)
    pull_resources: int  # resources of the one patient pulled
    import_entries: int  # NDJSON entries for `import --no-push`
    import_push_entries: int  # entries for `import` with push
    requests_per_client: int  # HTTP requests each of the 16 clients sends
    entries_per_request: int  # diary entries in each HTTP body
    export_extra: int  # resources loaded only for the export memory row
    web_workers: str = ""  # gunicorn processes for both servers; "" = the settings' default


SIZES = {
    "tiny": Size(20, 20, 3, 150, 200, 3, 1, 2, 0, web_workers="1"),  # starts faster
    "default": Size(300, 2_000, 150, 11_250, 20_000, 150, 8, 10, 0),
    "full": Size(1_000, 10_000, 300, 11_250, 100_000, 500, 20, 10, 50_000),
    "big": Size(300, 2_000, 150, 11_250, 1_000_000, 150, 8, 10, 300_000),
}


@dataclass(frozen=True)
class Row:
    path: str
    ours: str
    reference: str
    ratio: float
    goal: float

    @property
    def met(self) -> bool:
        return self.ratio >= self.goal


def rate(count: float, seconds: float, unit: str) -> str:
    return f"{count / seconds:,.0f} {unit}/s"


def best_of(rounds: int, run: Callable[[], object]) -> float:
    """The best wall time of `rounds` runs (after one warm-up run)."""
    run()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


# -- conversion, in-process and CLI ---------------------------------------------------------


def map_only(record: Record, ctx: MappingContext) -> list[dict[str, Any]]:
    """The same resources as plain dicts: the mapping functions without validation."""
    if isinstance(record, DiaryEntry):
        return diary_entry_to_observations(record, ctx)
    return infusion_record_to_resources(record, ctx)


def conversion_row(size: Size) -> Row:
    ctx = MappingContext("bench-app", "urn:diarybridge:client:bench-app", FhirVersion.R4)
    given = list(records(size.convert_records))
    count = len(mappings.to_resources(given, ctx))
    ours = best_of(3, lambda: mappings.to_resources(given, ctx))
    reference = best_of(
        3, lambda: [orjson.dumps(r) for record in given for r in map_only(record, ctx)]
    )
    return Row(
        f"conversion in-process, R4 ({count} resources)",
        rate(count, ours, "res"),
        rate(count, reference, "res") + " (dicts + orjson, no validation)",
        reference / ours,
        0.4,
    )


def timed_command(command: list[str]) -> float:
    """Run a command to its end; wall seconds, start-up included."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode:
        raise RuntimeError(f"{command[:3]} exited {done.returncode}: {done.stderr[-2000:]}")
    return time.perf_counter() - started


def peak_rss_of(arguments: list[str], env: dict[str, str]) -> int:
    """Run `diarybridge arguments` in a child of its own; its own peak RSS in KiB."""
    command = [sys.executable, str(ROOT / "bench" / "peak_rss.py"), *arguments]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
    if done.returncode:
        raise RuntimeError(f"diarybridge {arguments[0]} exited {done.returncode}: {done.stderr}")
    last = done.stderr.strip().splitlines()[-1]
    return int(last.removeprefix("peak_rss_kb "))


def cli_row(size: Size, work: Path) -> Row:
    import random

    rng = random.Random(7)
    source = work / "convert-in.ndjson"
    with source.open("w") as out:
        for n in range(size.cli_entries):
            out.write(json.dumps(synthetic_entry(n, rng)) + "\n")
    diarybridge = str(Path(sys.executable).parent / "diarybridge")
    ours = timed_command(
        [diarybridge, "convert", str(source), "--format", "ndjson", "-o", str(work / "ours.ndjson")]
    )
    plain = [sys.executable, str(ROOT / "bench" / "plain_convert.py")]
    reference = timed_command([*plain, str(source), str(work / "plain.ndjson")])
    ours_lines = sum(1 for _ in (work / "ours.ndjson").open())
    plain_lines = sum(1 for _ in (work / "plain.ndjson").open())
    if ours_lines != plain_lines:
        raise RuntimeError(f"convert wrote {ours_lines} resources, the reference {plain_lines}")
    n = size.cli_entries
    return Row(
        f"`diarybridge convert` CLI ({n} entries, start-up included)",
        rate(n, ours, "entries"),
        rate(n, reference, "entries") + " (plain CLI: orjson, schema, map)",
        reference / ours,
        0.6,
    )


# -- push and pull against the FHIR server --------------------------------------------------


def context(namespace: str) -> MappingContext:
    return MappingContext(namespace, f"urn:diarybridge:client:{namespace}", FhirVersion.R4)


def push_reference(base_url: str, resources: list[dict[str, Any]]) -> float:
    """PUT the resources with their ids in transactions of 50, one session; seconds taken."""
    started = time.perf_counter()
    with requests.Session() as http:
        for start in range(0, len(resources), TRANSACTION):
            bundle = {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "resource": r,
                        "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
                    }
                    for r in resources[start : start + TRANSACTION]
                ],
            }
            answer = http.post(
                base_url,
                data=orjson.dumps(bundle),
                headers={"Content-Type": "application/fhir+json"},
                timeout=300,
            )
            answer.raise_for_status()
    return time.perf_counter() - started


def push_rows(size: Size, base_url: str, work: Path) -> tuple[Row, float]:
    """Push defaults vs the reference; also returns the reference's resources/s."""
    stamp = time.time_ns()
    theirs = records_of(diary_payloads(f"synthetic-bench-pushref-{stamp}", size.push_entries))
    resources = mappings.to_resources(theirs, context("bench-push-ref"))
    reference = push_reference(base_url, resources)

    given = records_of(diary_payloads(f"synthetic-bench-push-{stamp}", size.push_entries))
    count = len(mappings.to_resources(given, context("bench-push")))
    url = f"sqlite:///{work / 'push-ledger.sqlite3'}"
    upgrade(url)
    sessions = make_session_factory(make_engine(url))
    accept_records(sessions, "bench-push", given)
    started = time.perf_counter()
    delivered = SyncRuntime(FhirServerSettings(base_url=base_url), sessions).worker().drain()
    ours = time.perf_counter() - started
    outcomes = {d.outcome.value for d in delivered}
    if len(delivered) != len(given) or outcomes - {"created", "updated"}:
        raise RuntimeError(f"push delivered {len(delivered)} of {len(given)}: {outcomes}")
    row = Row(
        f"push, defaults ({size.push_entries} entries, {count} resources)",
        rate(count, ours, "res"),
        rate(len(resources), reference, "res") + " (PUT in transactions of 50)",
        (count / ours) / (len(resources) / reference),
        0.85,
    )
    return row, len(resources) / reference


def raw_paged_gets(base_url: str, patient: str) -> int:
    """The patient's Observations and MedicationAdministrations by plain paged GETs."""
    count = 0
    with requests.Session() as http:
        for resource_type in ("Observation", "MedicationAdministration"):
            url: str | None = f"{base_url}/{resource_type}?subject={patient}&_count={RAW_PAGE}"
            while url:
                bundle = orjson.loads(
                    http.get(url, headers={"Accept": "application/fhir+json"}, timeout=300).content
                )
                count += len(bundle.get("entry", []))
                url = next(
                    (x["url"] for x in bundle.get("link", []) if x["relation"] == "next"), None
                )
    return count


def pull_row(size: Size, base_url: str) -> Row:
    patient = f"synthetic-bench-pull-{time.time_ns()}"
    ctx = context("bench-pull")
    per_entry = len(mappings.to_resources(records_of(diary_payloads("probe", 1)), ctx))
    entries = max(1, size.pull_resources // per_entry)
    data = mappings.to_resources(records_of(diary_payloads(patient, entries)), ctx)
    with FhirClient(base_url) as fhir:
        batch_put(fhir, data)
    reference_count = 0

    def reference() -> None:
        nonlocal reference_count
        reference_count = raw_paged_gets(base_url, f"Patient/{patient}")

    pulled_records = 0

    def ours() -> None:
        nonlocal pulled_records
        with FhirClient(base_url) as client:
            pulled = pull_records(
                client, f"Patient/{patient}", RecordKind.DIARY_ENTRY, PullWindow()
            )
        pulled_records = len(pulled.records)

    raw = best_of(1, reference)
    took = best_of(1, ours)
    if reference_count != len(data) or pulled_records != entries:
        raise RuntimeError(
            f"pull: {len(data)} loaded, raw GETs read {reference_count}, pulled {pulled_records}"
        )
    return Row(
        f"pull, one patient ({len(data)} resources)",
        rate(len(data), took, "res"),
        rate(len(data), raw, "res") + f" (raw paged GETs, _count={RAW_PAGE})",
        raw / took,
        0.85,
    )


# -- import ---------------------------------------------------------------------------------


def quiet_measure(path: Path, db: Path, fhir: str | None = None) -> dict[str, Any]:
    """bench_import's child run (a fresh process; the import's own time and peak RSS)."""
    command = [sys.executable, bench_import.__file__, "--child", str(path), str(db)]
    if fhir:
        command += ["--child-fhir", fhir]
    env = {**os.environ, "DIARYBRIDGE_LOG_LEVEL": "WARNING"}
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def orjson_reader(path: Path) -> float:
    """The reference: parse every line of the file with orjson; seconds taken."""
    started = time.perf_counter()
    with path.open("rb") as lines:
        for line in lines:
            orjson.loads(line)
    return time.perf_counter() - started


def import_rows(size: Size, base_url: str, work: Path, push_rate: float) -> list[Row]:
    source = work / "import.ndjson"
    bench_import.write_ndjson(source, size.import_entries)
    figures = quiet_measure(source, work / "import.sqlite3")
    n = figures["read"]
    reference = orjson_reader(source)
    peak_mb = figures["rss_peak_kb"] * 1024 / 1e6
    rows = [
        Row(
            f"`import --no-push` ({n} NDJSON entries)",
            rate(n, figures["seconds"], "entries"),
            rate(n, reference, "entries") + " (orjson reader)",
            reference / figures["seconds"],
            0.08,
        ),
        Row(
            f"memory: import --no-push, {n} entries (peak RSS)",
            f"{peak_mb:,.0f} MB",
            f"{MEMORY_LIMIT_MB:.0f} MB (limit)",
            MEMORY_LIMIT_MB / peak_mb,
            1.0,
        ),
    ]
    pushed = work / "import-push.ndjson"
    bench_import.write_ndjson(pushed, size.import_push_entries)
    entries = [orjson.loads(line) for line in pushed.open("rb")]
    resources = len(
        mappings.to_resources(
            load_records(entries, RecordKind.DIARY_ENTRY), context("bench-import")
        )
    )
    figures = quiet_measure(pushed, work / "import-push.sqlite3", base_url)
    if figures["read"] != len(entries):
        raise RuntimeError(f"import with push read {figures['read']} of {len(entries)}")
    ours = resources / figures["seconds"]
    rows.append(
        Row(
            f"`import` with push ({len(entries)} entries, {resources} resources)",
            f"{ours:,.0f} res/s",
            f"{push_rate:,.0f} res/s (the push reference)",
            ours / push_rate,
            0.85,
        )
    )
    return rows


def export_memory_row(size: Size, base_url: str, work: Path) -> Row:
    """`diarybridge export` of everything on the server, in its own process: its peak RSS."""
    if size.export_extra:
        with FhirClient(base_url) as fhir:
            stream = records(size.export_extra // 7 + 1, patients=20, seed=11)
            while True:
                chunk = [r for _, r in zip(range(100), stream, strict=False)]
                if not chunk:
                    break
                batch_put(fhir, mappings.to_resources(chunk, context("bench-export")))
    env = {**os.environ, **make_env(work), "DIARYBRIDGE_LOG_LEVEL": "WARNING"}
    out = work / "export"
    arguments = ["export", "--format", "fhir", "--out", str(out)]
    peak_kb = peak_rss_of([*arguments, "--fhir-base-url", base_url, "--search"], env)
    manifest = json.loads((out / "manifest.json").read_text())
    count = sum(o["count"] for o in manifest["output"])
    peak_mb = peak_kb * 1024 / 1e6
    return Row(
        f"memory: export --format fhir, {count} resources (peak RSS)",
        f"{peak_mb:,.0f} MB",
        f"{MEMORY_LIMIT_MB:.0f} MB (limit)",
        MEMORY_LIMIT_MB / peak_mb,
        1.0,
    )


# -- the HTTP API under 16 clients ----------------------------------------------------------


@contextmanager
def servers(*specs: tuple[list[str], int, Path], env: dict[str, str]) -> Iterator[list[str]]:
    """Start server commands (command, port, log) together, wait for each one's /healthz on
    127.0.0.1, yield their base URLs; stop them on leaving."""
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for command, _, log in specs:
            with log.open("w") as sink:
                processes.append(
                    subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
                )
        deadline = time.monotonic() + 120
        bases = []
        for process, (command, port, log) in zip(processes, specs, strict=True):
            base = f"http://127.0.0.1:{port}"
            while True:
                try:
                    if requests.get(f"{base}/healthz", timeout=2).ok:
                        break
                except requests.RequestException:  # not listening yet, or still starting
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{command[:4]} did not start: {log.read_text()[-2000:]}")
                time.sleep(0.2)
            bases.append(base)
        yield bases
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def latencies(url: str, bodies: list[list[bytes]], expect: int) -> list[float]:
    """Each client (a thread with its own session) posts its bodies in turn; ms per request."""
    headers = {"Content-Type": "application/json", "X-API-Key": KEYS["batch"]["key"]}
    lock = threading.Lock()
    samples: list[float] = []

    def client(mine: list[bytes]) -> None:
        with requests.Session() as http:
            for body in mine:
                started = time.perf_counter()
                answer = http.post(url, data=body, headers=headers, timeout=120)
                took = (time.perf_counter() - started) * 1000
                if answer.status_code != expect:
                    raise RuntimeError(f"POST {url}: {answer.status_code}: {answer.text[:300]}")
                with lock:
                    samples.append(took)

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        for done in [pool.submit(client, mine) for mine in bodies]:
            done.result()
    return samples


def percentile(samples: list[float], q: int) -> float:
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def request_bodies(size: Size, tag: str) -> list[list[bytes]]:
    """CLIENTS lists of JSON bodies of diary entries, every entry id unique."""
    return [
        [
            json.dumps(
                diary_payloads(f"synthetic-bench-{tag}-{c}-{i}", size.entries_per_request)
            ).encode()
            for i in range(size.requests_per_client)
        ]
        for c in range(CLIENTS)
    ]


def http_rows(size: Size, base_url: str, work: Path) -> list[Row]:
    env = {
        **os.environ,
        **make_env(work),
        "DIARYBRIDGE_LOG_LEVEL": "WARNING",
        "DIARYBRIDGE_FHIR_BASE_URL": base_url,
        "DIARYBRIDGE_SYNC_ASYNC": "true",
    }
    if size.web_workers:
        env["DIARYBRIDGE_WORKERS"] = size.web_workers
    ours_port, trivial_port = free_port(), free_port()
    diarybridge = str(Path(sys.executable).parent / "diarybridge")
    serve = [diarybridge, "serve", "--host", "127.0.0.1", "--port", str(ours_port)]
    trivial = [sys.executable, "-m", "gunicorn", "--config", "python:service.gunicorn_config"]
    trivial += ["--bind", f"127.0.0.1:{trivial_port}", "--chdir", str(ROOT / "bench")]
    trivial += ["trivial_app:app"]
    rows = []
    with servers(
        (serve, ours_port, work / "serve.log"),
        (trivial, trivial_port, work / "trivial.log"),
        env=env,
    ) as (ours, reference):
        warm = request_bodies(Size(0, 0, 0, 0, 0, 0, 1, size.entries_per_request, 0), "warm")
        latencies(f"{ours}/convert/diary-entries", warm[:2], 200)
        latencies(f"{reference}/convert/diary-entries", warm[:2], 200)
        for path, quantile, expect, goal in (
            ("/convert/diary-entries", 50, 200, 0.3),
            ("/sync/diary-entries", 99, 202, 0.2),
        ):
            bodies = request_bodies(size, path.split("/")[1])
            theirs = percentile(latencies(f"{reference}{path}", bodies, 200), quantile)
            mine = percentile(latencies(f"{ours}{path}", bodies, expect), quantile)
            mode = " async" if path.startswith("/sync") else ""
            rows.append(
                Row(
                    f"`POST {path}`{mode}, {CLIENTS} clients, p{quantile} "
                    f"({size.entries_per_request} entries a request)",
                    f"{mine:,.1f} ms",
                    f"{theirs:,.1f} ms (trivial Flask endpoint, same gunicorn config)",
                    theirs / mine,
                    goal,
                )
            )
    return rows


# -- the table ------------------------------------------------------------------------------


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({platform.machine()}, {platform.system()}), load average "
        f"{load} at the end, Python {platform.python_version()}"
    )


def print_table(rows: list[Row], size_name: str) -> None:
    print()
    print(f"size {size_name}; machine: {machine()}")
    print("| path | ours | reference | ratio | goal | met? |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        met = "yes" if row.met else "no"
        print(
            f"| {row.path} | {row.ours} | {row.reference} | {row.ratio:.3f} | "
            f"≥ {row.goal:g} | {met} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="default")
    args = parser.parse_args()
    size = SIZES[args.size]
    rows: list[Row] = []

    def step(label: str, run: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = run()
        print(f"{label}: done in {time.perf_counter() - started:.1f} s", flush=True)
        return result

    with tempfile.TemporaryDirectory(prefix="bench-run-all-") as tmp:
        work = Path(tmp)
        server = start_fhir_server(persist=False)
        try:
            base = server.base_url
            rows.append(step("conversion", lambda: conversion_row(size)))
            rows.append(step("convert CLI", lambda: cli_row(size, work)))
            push, push_rate = step("push", lambda: push_rows(size, base, work))
            rows.append(push)
            rows.append(step("pull", lambda: pull_row(size, base)))
            rows.extend(step("import", lambda: import_rows(size, base, work, push_rate)))
            rows.extend(step("HTTP", lambda: http_rows(size, base, work)))
            rows.append(step("export memory", lambda: export_memory_row(size, base, work)))
        finally:
            server.stop()
    print_table(rows, args.size)


if __name__ == "__main__":
    main()

"""API latency in-process (Flask test client, no network), and what observability costs.

    .venv/bin/python bench/bench_api.py [--requests 300]

Prints p50/p95 per request for health checks, a /metrics scrape (with an outbox of queued
entries to count) and conversions of 1 and 100 diary entries (audit rows included), once with
the request hooks as shipped and once with them removed (no request id, access line, request
metrics), so the difference is the per-request cost of logs and metrics.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flask import Flask
from flask.testing import FlaskClient

from service import wiring
from service.app import create_app
from service.config import Settings
from service.store import AcceptItem, accept
from tests.api.samples import DIARY_ENTRY, diary
from tests.conftest import PATIENT, headers, make_env

OUTBOX_ENTRIES = 2000


def timed(call: Callable[[], object], n: int) -> tuple[float, float]:
    """p50 and p95 of `n` calls, in milliseconds (after 10 warm-up calls)."""
    for _ in range(10):
        call()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    quantiles = statistics.quantiles(samples, n=20)
    return statistics.median(samples), quantiles[18]


def without_request_hooks(app: Flask) -> None:
    """Drop the observability hooks (first registered) to measure what they cost."""
    app.before_request_funcs[None] = [
        f for f in app.before_request_funcs[None] if f.__name__ != "_start"
    ]
    app.after_request_funcs[None] = [
        f for f in app.after_request_funcs[None] if f.__name__ != "_finish"
    ]


def fill_outbox(app: Flask) -> None:
    items = [
        AcceptItem("bench", "diary-entry", f"e{i}", PATIENT, DIARY_ENTRY)
        for i in range(OUTBOX_ENTRIES)
    ]
    with wiring.of(app).sessions.begin() as session:
        accept(session, "bench", items)


def cases(client: FlaskClient) -> dict[str, Callable[[], object]]:
    one = [diary(entry_id="bench-1")]
    hundred = [diary(entry_id=f"bench-{i}") for i in range(100)]
    batch = headers("batch")
    return {
        "GET /healthz": lambda: client.get("/healthz"),
        "GET /readyz (SQLite)": lambda: client.get("/readyz"),
        f"GET /metrics ({OUTBOX_ENTRIES} queued)": lambda: client.get("/metrics", headers=batch),
        "POST /convert/diary-entries x1": lambda: client.post(
            "/convert/diary-entries", json=one, headers=batch
        ),
        "POST /convert/diary-entries x100": lambda: client.post(
            "/convert/diary-entries", json=hundred, headers=batch
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    # Log lines (written to whatever sys.stderr is) go to a null sink: we time formatting and
    # writing, not a terminal.
    real_stderr, sys.stderr = sys.stderr, open(os.devnull, "w")  # noqa: SIM115
    with tempfile.TemporaryDirectory() as tmp:
        rows: dict[str, list[str]] = {}
        for label, strip in (("with hooks", False), ("without", True)):
            env = make_env(Path(tmp) / label.replace(" ", "-"), DIARYBRIDGE_LOG_LEVEL="INFO")
            (Path(tmp) / label.replace(" ", "-")).mkdir()
            app = create_app(Settings.from_env(env))
            fill_outbox(app)
            if strip:
                without_request_hooks(app)
            for name, call in cases(app.test_client()).items():
                n = args.requests if "x100" not in name else max(20, args.requests // 10)
                p50, p95 = timed(call, n)
                rows.setdefault(name, []).append(f"{p50:8.2f} {p95:8.2f}")
        sys.stderr = real_stderr
        print(f"{'request':38} {'with hooks p50/p95 ms':>22} {'without p50/p95 ms':>22}")
        for name, figures in rows.items():
            print(f"{name:38} {figures[0]:>22} {figures[1]:>22}")


if __name__ == "__main__":
    main()

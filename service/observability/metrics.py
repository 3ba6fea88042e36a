"""Prometheus metrics: one registry per app, and small functions any layer may call.

`records_converted`, `pushed` and `push_seconds` work with or without a request: while one is
served they count into its app's registry (the request hooks make it current, in a contextvar as
the request id is); elsewhere (a sync worker thread, the CLI) into the registry of the app made
last in this process, or a process-wide fallback when there is none. No Flask here: the worker
process records its pushes without importing the web framework.

Under gunicorn with several workers, prometheus_client's multiprocess mode
(PROMETHEUS_MULTIPROC_DIR, set before the workers import it) writes every worker's values to files
there, and a scrape sums them with `scrape_registry`, whichever worker answers it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar, Token

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from service.store import LedgerStatus, StatusCounts

log = logging.getLogger(__name__)

# The *_created series (a timestamp per labelled child) only double what a scraper shows.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Request and push latencies: 5 ms .. 60 s, where a slow FHIR server would show up.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """The metrics of one app, in their own registry (so two apps in one process never clash)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.outbox: OutboxCollector | None = None
        self.requests = Counter(
            "diarybridge_http_requests",
            "HTTP requests answered, by route rule, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "diarybridge_http_request_duration_seconds",
            "Time to answer an HTTP request, by route rule and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.converted = Counter(
            "diarybridge_records_converted",
            "Records converted to or from FHIR, by record kind.",
            ["kind"],
            registry=self.registry,
        )
        self.pushes = Counter(
            "diarybridge_push_records",
            "Records pushed to the FHIR server, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.push_seconds = Histogram(
            "diarybridge_push_duration_seconds",
            "Time of one push to the FHIR server.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )


class OutboxCollector(Collector):
    """Outbox depth by status and the oldest queued age, read from the store at each scrape."""

    def __init__(self, read_counts: Callable[[], StatusCounts]) -> None:
        self._read_counts = read_counts

    def collect(self) -> Iterator[Metric]:
        """Yield the gauges; on a store failure, only `diarybridge_outbox_up 0`."""
        up = GaugeMetricFamily("diarybridge_outbox_up", "Whether the outbox could be read.")
        try:
            counts = self._read_counts()
        except Exception as exc:  # a scrape must not fail because the database is away
            log.warning("outbox metrics unavailable: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily(
            "diarybridge_outbox_entries", "Ledger entries by delivery status.", labels=["status"]
        )
        for status in LedgerStatus:
            depth.add_metric([status.value], counts.counts.get(status.value, 0))
        yield depth
        yield GaugeMetricFamily(
            "diarybridge_outbox_in_flight",
            "Queued entries a worker holds under lease.",
            value=counts.in_flight,
        )
        yield GaugeMetricFamily(
            "diarybridge_outbox_oldest_queued_age_seconds",
            "Age of the oldest queued entry (0 when none is queued).",
            value=counts.oldest_queued_age_seconds or 0.0,
        )


_fallback = Metrics()
_last_installed: Metrics | None = None


_serving: ContextVar[Metrics | None] = ContextVar("diarybridge_metrics", default=None)


def install_metrics(read_counts: Callable[[], StatusCounts]) -> Metrics:
    """Metrics for a new app, including the outbox gauges; the app keeps them in its wiring."""
    global _last_installed
    metrics = Metrics()
    metrics.outbox = OutboxCollector(read_counts)
    metrics.registry.register(metrics.outbox)
    _last_installed = metrics
    return metrics


def serve_with(metrics: Metrics) -> Token[Metrics | None]:
    """Count into `metrics` in this context (a request); give the token to `stop_serving`."""
    return _serving.set(metrics)


def stop_serving(token: Token[Metrics | None]) -> None:
    """Restore the metrics that were current before `serve_with`."""
    _serving.reset(token)


def scrape_registry(metrics: Metrics, multiproc_dir: str) -> CollectorRegistry:
    """What a scrape shows: the app's own registry, or with a multiprocess directory every
    process's counters summed (a fresh registry per scrape, as prometheus_client prescribes)
    plus the outbox gauges, which read the shared store and so are counted once."""
    if not multiproc_dir:
        return metrics.registry
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=multiproc_dir)  # type: ignore[no-untyped-call]
    if metrics.outbox is not None:
        registry.register(metrics.outbox)
    return registry


def current() -> Metrics:
    """The metrics to count into here: the app's while it serves a request, else the last app's."""
    return _serving.get() or _last_installed or _fallback


def records_converted(kind: str, n: int) -> None:
    """Count `n` records of `kind` converted (to or from FHIR)."""
    if n:
        current().converted.labels(kind=kind).inc(n)


def pushed(outcome: str, n: int) -> None:
    """Count `n` records pushed with `outcome` (e.g. sent, conflict, failed, retried)."""
    if n:
        current().pushes.labels(outcome=outcome).inc(n)


def push_seconds(seconds: float) -> None:
    """Record how long one push to the FHIR server took."""
    current().push_seconds.observe(seconds)

"""Fetch the resources of an export from the FHIR server: Bulk $export if offered, else search."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlencode

from service.exports.ndjson import TypeFiles, dumps, read_lines
from service.exports.request import ExportRequest, ExportRequestError, instant, parse_instant
from service.fhir_client import (
    BulkExportCancelled,
    FhirClient,
    FhirClientError,
    delete_job,
    download,
    kick_off,
    wait_for_manifest,
)

log = logging.getLogger(__name__)

# Medplum (and many servers) cap _count at 1000; larger pages mean fewer round trips.
SEARCH_PAGE_SIZE = 1000
# How often (in resources) progress is reported and a cancel looked for.
REPORT_EVERY = 1000
ERRORS = "OperationOutcome"  # the file name of error outcomes, as in a Bulk manifest's error[]

Report = Callable[[str], None]
ShouldStop = Callable[[], bool]


class ExportCancelled(Exception):
    """The job was cancelled while it ran."""


@dataclass(frozen=True)
class FetchResult:
    """How the resources were fetched, and the server's time the export reflects."""

    method: Literal["bulk", "search"]
    transaction_time: str
    request_url: str


def _never() -> bool:
    return False


def _ignore(_: str) -> None:
    return None


def search_params(request: ExportRequest) -> list[tuple[str, str]]:
    """The search for one type: patient, and _lastUpdated from since (incl.) to until (excl.)."""
    params: list[tuple[str, str]] = []
    if request.patient is not None:
        params.append(("patient", request.patient))
    if request.since is not None:
        params.append(("_lastUpdated", f"ge{instant(request.since)}"))
    if request.until is not None:
        params.append(("_lastUpdated", f"lt{instant(request.until)}"))
    return params


def fetch_by_search(
    fhir: FhirClient,
    request: ExportRequest,
    files: TypeFiles,
    *,
    report: Report = _ignore,
    should_stop: ShouldStop = _never,
) -> FetchResult:
    """Page through a search per type, writing each resource as one line as it arrives."""
    started = instant(datetime.now(UTC))
    params = search_params(request)
    for resource_type in request.types:
        count = 0
        files.handle(resource_type)  # an empty type still gets its (empty) file
        for resource in fhir.search(resource_type, params, page_size=SEARCH_PAGE_SIZE):
            files.write(resource_type, dumps(resource))
            count += 1
            if count % REPORT_EVERY == 0:
                report(f"{resource_type}: {count} resources")
                if should_stop():
                    raise ExportCancelled()
        report(f"{resource_type}: {count} resources")
        log.info("export: %s by search, %d resources", resource_type, count)
    # No single URL made this export; name the searches: the types, then their shared query.
    query = f"?{urlencode(params)}" if params else ""
    return FetchResult("search", started, f"{fhir.base_url}/{','.join(request.types)}{query}")


def _before(until: datetime | None, resource: dict[str, object]) -> bool:
    if until is None:
        return True
    meta = resource.get("meta")
    updated = meta.get("lastUpdated") if isinstance(meta, dict) else None
    try:
        when = parse_instant(updated, "meta.lastUpdated") if isinstance(updated, str) else None
    except ExportRequestError:
        when = None  # the server's odd timestamp: keep the resource rather than lose it
    # Bulk $export has no upper bound; apply `until` here so both paths give the same content.
    return when is None or when < until


def fetch_by_bulk(
    fhir: FhirClient,
    request: ExportRequest,
    files: TypeFiles,
    staging: Path,
    *,
    report: Report = _ignore,
    should_stop: ShouldStop = _never,
) -> FetchResult:
    """Kick off $export, poll it, download each output and copy its lines into our files."""
    since = instant(request.since) if request.since else None
    status_url = kick_off(fhir, types=request.types, since=since, patient=request.patient)
    try:
        try:
            manifest = wait_for_manifest(
                fhir,
                status_url,
                on_progress=lambda p: report(f"server: {p or 'in progress'}"),
                should_stop=should_stop,
            )
        except BulkExportCancelled:
            raise ExportCancelled() from None
        for resource_type in request.types:
            files.handle(resource_type)
        staging.mkdir(parents=True, exist_ok=True)
        outputs = [(item, False) for item in manifest.output]
        outputs += [(item, True) for item in manifest.error]
        for index, (item, is_error) in enumerate(outputs):
            target = ERRORS if is_error else item.type
            if not is_error and item.type not in request.types:
                continue  # a server that ignored _type: keep only what was asked
            piece = staging / f"{index}.ndjson"
            download(fhir, item.url, piece, manifest)
            for resource in read_lines(piece):
                if is_error or _before(request.until, resource):
                    files.write(target, dumps(resource))
            piece.unlink()
            report(f"{target}: {files.counts.get(target, 0)} resources")
            if should_stop():
                raise ExportCancelled()
        log.info("export: %d output file(s) by $export", len(outputs))
    finally:
        try:
            delete_job(fhir, status_url)
        except FhirClientError as exc:
            # The server cleans up expired jobs itself; a failed DELETE loses nothing of ours.
            log.warning("export: $export job DELETE failed: %s", type(exc).__name__)
    return FetchResult("bulk", manifest.transaction_time, manifest.request or status_url)


def fetch(
    fhir: FhirClient,
    request: ExportRequest,
    files: TypeFiles,
    staging: Path,
    *,
    report: Report = _ignore,
    should_stop: ShouldStop = _never,
    use_bulk: bool | None = None,
) -> FetchResult:
    """Use $export when the CapabilityStatement offers it (or `use_bulk` says so), else search."""
    if use_bulk is None:
        use_bulk = fhir.capabilities().export
    if use_bulk:
        return fetch_by_bulk(fhir, request, files, staging, report=report, should_stop=should_stop)
    return fetch_by_search(fhir, request, files, report=report, should_stop=should_stop)

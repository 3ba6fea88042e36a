"""Fetch the resources of an export from the FHIR server: Bulk $export if offered, else search."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Literal
from urllib.parse import urlencode

from service.exports.ndjson import TypeFiles, dumps, read_lines
from service.exports.patient_scope import PatientScope, scope_for
from service.exports.request import (
    DERIVED_TYPES,
    ExportRequest,
    ExportRequestError,
    instant,
    parse_instant,
)
from service.fhir_client import (
    BulkExportCancelled,
    BulkExportRefused,
    BulkManifest,
    FhirClient,
    FhirClientError,
    FhirServerError,
    delete_job,
    download,
    ignored_parameter_issues,
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
    """How the resources were fetched, the server's time the export reflects, and (for a
    patient's export) how many resources were checked and dropped as not the job's patients."""

    method: Literal["bulk", "search"]
    transaction_time: str
    request_url: str
    patient_check: dict[str, int] | None = None


def _never() -> bool:
    return False


def _ignore(_: str) -> None:
    return None


# R4 defines no `patient` search on AdverseEvent; `subject` names the same patient there.
PATIENT_PARAMETER = {"AdverseEvent": "subject"}


def search_params(request: ExportRequest, resource_type: str = "") -> list[tuple[str, str]]:
    """The search for one type: patient, and _lastUpdated from since (incl.) to until (excl.)."""
    params: list[tuple[str, str]] = []
    if request.patient is not None:
        params.append((PATIENT_PARAMETER.get(resource_type, "patient"), request.patient))
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
    """Page through a search per type, writing each resource as one line as it arrives.

    The search filters by patient, but a server may ignore a parameter: every resource is
    still checked against the job's patients.
    """
    started = instant(datetime.now(UTC))
    params = search_params(request)
    scope = scope_for(request.patient, fhir.base_url)
    for resource_type in request.types:
        count = 0
        files.handle(resource_type)  # an empty type still gets its (empty) file
        found = fhir.search(
            resource_type, search_params(request, resource_type), page_size=SEARCH_PAGE_SIZE
        )
        try:
            for resource in found:
                if scope is None or scope.keeps(resource):
                    files.write(resource_type, dumps(resource))
                count += 1
                if count % REPORT_EVERY == 0:
                    report(_progress(resource_type, files, scope))
                    if should_stop():
                        raise ExportCancelled()
        except FhirServerError as exc:
            if resource_type not in DERIVED_TYPES or exc.status != HTTPStatus.BAD_REQUEST:
                raise
            log.warning("export: the server cannot search %s; its file stays empty", resource_type)
        report(_progress(resource_type, files, scope))
        log.info("export: %s by search, %d resources", resource_type, count)
    _log_dropped(scope)
    # No single URL made this export; name the searches: the types, then their shared query.
    query = f"?{urlencode(params)}" if params else ""
    return FetchResult(
        "search",
        started,
        f"{fhir.base_url}/{','.join(request.types)}{query}",
        scope.counts() if scope else None,
    )


def _progress(name: str, files: TypeFiles, scope: PatientScope | None) -> str:
    text = f"{name}: {files.counts.get(name, 0)} resources"
    if scope is not None and scope.dropped:
        text += f" ({scope.dropped} dropped so far: not the job's patients)"
    return text


def _log_dropped(scope: PatientScope | None) -> None:
    if scope is not None and scope.dropped:
        # Counts only: which patients the server sent is nobody's business here.
        log.warning(
            "export: %d resource(s) dropped as not the job's patients (%d to another server)",
            scope.dropped,
            scope.foreign_references,
        )


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


def _server_errors(fhir: FhirClient, manifest: BulkManifest, staging: Path) -> Iterator[Path]:
    """Download the manifest's error[] files first: they decide whether the output is usable."""
    for index, item in enumerate(manifest.error):
        piece = staging / f"error-{index}.ndjson"
        download(fhir, item.url, piece, manifest)
        yield piece


def fetch_by_bulk(
    fhir: FhirClient,
    request: ExportRequest,
    files: TypeFiles,
    staging: Path,
    *,
    report: Report = _ignore,
    should_stop: ShouldStop = _never,
    strict: bool = True,
) -> FetchResult:
    """Kick off $export, poll it, download each output and copy its lines into our files.

    Raises BulkExportRefused, before writing anything, if the server refused a parameter or
    says in error[] that it ignored one (e.g. `patient`: the output would be every patient's).
    Even so every resource is checked against the job's patients.
    """
    since = instant(request.since) if request.since else None
    status_url = kick_off(
        fhir, types=request.types, since=since, patient=request.patient, strict=strict
    )
    scope = scope_for(request.patient, fhir.base_url)
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
        staging.mkdir(parents=True, exist_ok=True)
        errors = list(_server_errors(fhir, manifest, staging))
        ignored = sum(
            ignored_parameter_issues(outcome) for piece in errors for outcome in read_lines(piece)
        )
        if ignored:
            raise BulkExportRefused(
                f"$export ran but the server ignored {ignored} requested parameter(s) "
                "(manifest error[]: not-supported)"
            )
        for resource_type in request.types:
            files.handle(resource_type)
        for piece in errors:
            for outcome in read_lines(piece):
                files.write(ERRORS, dumps(outcome))
            piece.unlink()
        for index, item in enumerate(manifest.output):
            if item.type not in request.types:
                continue  # a server that ignored _type: keep only what was asked
            piece = staging / f"{index}.ndjson"
            download(fhir, item.url, piece, manifest)
            for resource in read_lines(piece):
                if not _before(request.until, resource):
                    continue
                if scope is None or scope.keeps(resource):
                    files.write(item.type, dumps(resource))
            piece.unlink()
            report(_progress(item.type, files, scope))
            if should_stop():
                raise ExportCancelled()
        _log_dropped(scope)
        log.info(
            "export: %d output and %d error file(s) by $export",
            len(manifest.output),
            len(manifest.error),
        )
    finally:
        try:
            delete_job(fhir, status_url)
        except FhirClientError as exc:
            # The server cleans up expired jobs itself; a failed DELETE loses nothing of ours.
            log.warning("export: $export job DELETE failed: %s", type(exc).__name__)
    return FetchResult(
        "bulk",
        manifest.transaction_time,
        manifest.request or status_url,
        scope.counts() if scope else None,
    )


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
    """Use $export when the CapabilityStatement offers it (or `use_bulk` says so), else search.

    An $export the server refuses, or runs ignoring a parameter, falls back to search (which
    filters by patient, and whose every resource is checked too).
    """
    if use_bulk is None:
        use_bulk = fhir.capabilities().export
    if use_bulk:
        try:
            return fetch_by_bulk(
                fhir, request, files, staging, report=report, should_stop=should_stop
            )
        except BulkExportRefused as exc:
            log.warning("export: %s; falling back to paged search", exc)
            report("server's $export cannot do this export as asked: paged search instead")
            files.abort()  # nothing of the refused export may reach the output
    return fetch_by_search(fhir, request, files, report=report, should_stop=should_stop)

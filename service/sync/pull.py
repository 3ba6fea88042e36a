"""Pull: a patient's resources from the clinic's server, back to our diary and infusion records."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import mappings
from mappings.errors import MappingError
from mappings.identifiers import resource_business_key
from mappings.records import DERIVED_RESOURCE_TYPES, DiaryEntry, Record, RecordKind
from service.fhir_client import FhirClient, FhirServerError, foreign_references, is_absolute

log = logging.getLogger(__name__)

PULLED_TYPES = RecordKind.INFUSION.resource_types  # every type any kind is stored as
# An infusion's AdverseEvent only repeats what its symptom Observations hold (mappings/README),
# so a server that cannot search it (SEKMET answers 400) costs nothing; diary entries have none.
DERIVED_TYPES = DERIVED_RESOURCE_TYPES
TYPES_OF_KIND = {kind: kind.resource_types for kind in RecordKind}
# What we ask for when not configured (DIARYBRIDGE_PULL_PAGE_SIZE): the largest _count common
# servers honour (SEKMET and HAPI trim larger ones silently, Medplum allows 1000). Fewer pages
# matter: a server rescans every match per page. A server's smaller cap is learned (client.limits).
MAX_PAGE_SIZE = 1000
KIND_OF_KEY = {kind.value: kind for kind in RecordKind}


@dataclass(frozen=True)
class PullWindow:
    """Which records to pull: by the record's own time, and by the server's _lastUpdated."""

    since: datetime | None = None
    until: datetime | None = None
    last_updated_since: datetime | None = None


@dataclass(frozen=True)
class Pulled:
    """Records read back, how many groups of our resources could not be read, and how many
    resources the server returned for another subject (left out, and never shown)."""

    records: list[Record]
    unreadable: int
    other_subject: int = 0


def _search_params(patient_reference: str, window: PullWindow) -> list[tuple[str, str]]:
    params = [("subject", patient_reference)]
    if window.last_updated_since is not None:
        # In UTC: FHIR instants allow offsets only up to +/-14:00, Python any offset.
        since = window.last_updated_since.astimezone(UTC).isoformat().replace("+00:00", "Z")
        params.append(("_lastUpdated", f"ge{since}"))
    return params


def retracted(resource: dict[str, Any]) -> bool:
    """A resource we withdrew (entered-in-error): part of no live record, in a pull or an export."""
    return resource.get("status") == "entered-in-error"


def page_size(client: FhirClient, configured: int | None = None) -> int:
    """The _count to pull with: the configured one, else the largest the server allows."""
    return configured or client.default_page_size or client.limits.page_size or MAX_PAGE_SIZE


def our_resources(
    client: FhirClient,
    patient_reference: str,
    window: PullWindow,
    request_id: str | None = None,
    types: tuple[str, ...] = PULLED_TYPES,
    *,
    count: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Every resource of ours for the patient, page by page; retracted ones left out."""
    for resource_type in types:
        try:
            for resource in client.search(
                resource_type,
                _search_params(patient_reference, window),
                page_size=page_size(client, count),
                request_id=request_id,
            ):
                if retracted(resource):
                    continue
                try:
                    resource_business_key(resource)
                except MappingError:
                    continue  # another system's resource about the same patient
                yield resource
        except FhirServerError as exc:
            if resource_type not in DERIVED_TYPES or exc.status != HTTPStatus.BAD_REQUEST:
                raise
            log.info("the server cannot search %s; pulled without them", resource_type)


def _time_of(record: Record) -> datetime:
    return record.recorded_at if isinstance(record, DiaryEntry) else record.start


def _subject(resource: dict[str, Any]) -> str | None:
    subject = resource.get("subject")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    return reference if isinstance(reference, str) else None


def records_from(
    resources: Iterable[dict[str, Any]], kind: RecordKind, patient_reference: str
) -> Pulled:
    """Group the patient's resources by record and map each group back; a bad group is
    counted, not fatal. References must be relative to the server's base already (the client
    does that): a resource about another patient of this server is left out, whatever the
    server's search returned, and a group that points at another base (its subject included)
    is unreadable: kept whole, so it is counted instead of read back with a part missing."""
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    other_subject = 0
    for resource in resources:
        subject = _subject(resource)
        if subject != patient_reference and not (subject and is_absolute(subject)):
            other_subject += 1
            continue
        key = resource_business_key(resource)
        if KIND_OF_KEY.get(key.kind) is kind:
            groups.setdefault(key.record, []).append(resource)
    records: list[Record] = []
    unreadable = 0
    for group in groups.values():
        if any(foreign_references(resource) for resource in group):
            # Not ours to follow (another server's resource): a record we cannot rebuild.
            unreadable += 1
            log.warning("a pulled %s group refers to another base URL", kind.value)
            continue
        try:
            records.extend(mappings.from_resources(group))
        except MappingError as exc:
            unreadable += 1
            log.warning(
                "a pulled %s group could not be mapped back: %s", kind.value, type(exc).__name__
            )
    if other_subject:
        # The server did not (only) apply our subject filter; counted here, never answered.
        log.warning("left out %d pulled resource(s) of another subject", other_subject)
    return Pulled(records=records, unreadable=unreadable, other_subject=other_subject)


def pull_records(
    client: FhirClient,
    patient_reference: str,
    kind: RecordKind,
    window: PullWindow,
    request_id: str | None = None,
    *,
    count: int | None = None,
) -> Pulled:
    """The patient's records of one kind in the window, oldest first; `count` resources a page
    (default: the largest the server allows)."""
    pulled = records_from(
        our_resources(
            client, patient_reference, window, request_id, TYPES_OF_KIND[kind], count=count
        ),
        kind,
        patient_reference,
    )
    wanted = [
        r
        for r in pulled.records
        if (window.since is None or _time_of(r) >= window.since)
        and (window.until is None or _time_of(r) < window.until)
    ]
    wanted.sort(key=lambda r: (_time_of(r), mappings.record_key(r)))
    log.info("pulled %d %s record(s) (%d unreadable)", len(wanted), kind.value, pulled.unreadable)
    return Pulled(wanted, pulled.unreadable, pulled.other_subject)

"""Pull: a patient's resources from the clinic's server, back to our diary and infusion records."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import mappings
from mappings.errors import MappingError
from mappings.identifiers import resource_business_key
from mappings.records import DiaryEntry, Record
from service.fhir_client import FhirClient
from service.schemas import RecordKind

log = logging.getLogger(__name__)

PULLED_TYPES = ("Observation", "MedicationAdministration")
PAGE_SIZE = 200
KIND_OF_KEY = {"diary-entry": RecordKind.DIARY_ENTRY, "infusion": RecordKind.INFUSION}


@dataclass(frozen=True)
class PullWindow:
    """Which records to pull: by the record's own time, and by the server's _lastUpdated."""

    since: datetime | None = None
    until: datetime | None = None
    last_updated_since: datetime | None = None


@dataclass(frozen=True)
class Pulled:
    """Records read back, and how many groups of our resources could not be read."""

    records: list[Record]
    unreadable: int


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


def our_resources(
    client: FhirClient, patient_reference: str, window: PullWindow, request_id: str | None = None
) -> Iterator[dict[str, Any]]:
    """Every resource of ours for the patient, page by page; retracted ones left out."""
    for resource_type in PULLED_TYPES:
        for resource in client.search(
            resource_type,
            _search_params(patient_reference, window),
            page_size=PAGE_SIZE,
            request_id=request_id,
        ):
            if retracted(resource):
                continue
            try:
                resource_business_key(resource)
            except MappingError:
                continue  # another system's resource about the same patient
            yield resource


def _time_of(record: Record) -> datetime:
    return record.recorded_at if isinstance(record, DiaryEntry) else record.start


def records_from(resources: Iterable[dict[str, Any]], kind: RecordKind) -> Pulled:
    """Group resources by record and map each group back; a bad group is counted, not fatal."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for resource in resources:
        key = resource_business_key(resource)
        if KIND_OF_KEY.get(key.kind) is kind:
            groups.setdefault((key.app_namespace, key.kind, key.source_id), []).append(resource)
    records: list[Record] = []
    unreadable = 0
    for group in groups.values():
        try:
            records.extend(mappings.from_resources(group))
        except MappingError as exc:
            unreadable += 1
            log.warning(
                "a pulled %s group could not be mapped back: %s", kind.value, type(exc).__name__
            )
    return Pulled(records=records, unreadable=unreadable)


def pull_records(
    client: FhirClient,
    patient_reference: str,
    kind: RecordKind,
    window: PullWindow,
    request_id: str | None = None,
) -> Pulled:
    """The patient's records of one kind in the window, oldest first."""
    pulled = records_from(our_resources(client, patient_reference, window, request_id), kind)
    wanted = [
        r
        for r in pulled.records
        if (window.since is None or _time_of(r) >= window.since)
        and (window.until is None or _time_of(r) < window.until)
    ]
    wanted.sort(key=lambda r: (_time_of(r), mappings.record_key(r)))
    log.info("pulled %d %s record(s) (%d unreadable)", len(wanted), kind.value, pulled.unreadable)
    return Pulled(records=wanted, unreadable=pulled.unreadable)

"""Pull one page of a patient's records (of one kind) back from the clinic's server."""

from __future__ import annotations

from dataclasses import dataclass

from mappings.records import Record
from service.fhir_client import FhirClient
from service.sync import pull


@dataclass(frozen=True)
class PulledPage:
    """One page of the records read back, oldest first, and what the whole pull found."""

    records: list[Record]
    total: int  # records in the whole window
    unreadable: int  # groups of our resources that could not be read back
    more: bool  # a later page has records


def pull_page(
    client: FhirClient,
    patient_reference: str,
    kind: pull.RecordKind,
    window: pull.PullWindow,
    *,
    page: int,
    count: int,
    trace_id: str | None = None,
) -> PulledPage:
    """Page `page` (from 0) of `count` records of the patient's pull in the window."""
    pulled = pull.pull_records(client, patient_reference, kind, window, trace_id)
    start = page * count
    records = pulled.records[start : start + count]
    return PulledPage(
        records=records,
        total=len(pulled.records),
        unreadable=pulled.unreadable,
        more=start + len(records) < len(pulled.records),
    )

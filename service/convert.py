"""Conversion use cases shared by the API and the CLI: our JSON <-> FHIR, nothing half-converted."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import mappings
from mappings import records as r
from mappings.context import MappingContext
from service import json_input
from service.observability import metrics
from service.schemas import RecordKind, dump_record, load_records

log = logging.getLogger(__name__)


class FhirInputError(ValueError):
    """FHIR input we cannot read (not a Bundle, a bad NDJSON line); names where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def records_to_bundle(
    payload: Any, kind: RecordKind, ctx: MappingContext, bundle_type: str, max_records: int
) -> dict[str, Any]:
    """Validate our JSON, map every record, and wrap the resources in one Bundle."""
    records = load_records(payload, kind, max_records)
    resources = mappings.to_resources(records, ctx)
    metrics.records_converted(kind.value, len(records))
    log.info(
        "converted %d %s record(s) to %d resource(s) (%s)",
        len(records),
        kind.value,
        len(resources),
        ctx.fhir_version.value,
    )
    if bundle_type == "transaction":
        return mappings.transaction_bundle(resources, ctx, "conditional-create")
    return mappings.collection_bundle(resources, ctx)


def resources_from_bundle(bundle: Any) -> list[dict[str, Any]]:
    """The resources of a Bundle (any type); a single resource is taken as a one-item list."""
    if not isinstance(bundle, dict) or "resourceType" not in bundle:
        raise FhirInputError("resourceType", "must be a FHIR Bundle or resource (JSON object)")
    if bundle["resourceType"] != "Bundle":
        return [bundle]
    resources = []
    for index, entry in enumerate(bundle.get("entry") or []):
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            raise FhirInputError(f"entry[{index}].resource", "is missing or not an object")
        resources.append(entry["resource"])
    return resources


def resources_from_ndjson(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """One resource per non-blank line; a bad line is an error naming its number."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            resource = json_input.loads(line)
        except json_input.JsonTooDeep as exc:
            raise FhirInputError(f"line {number}", str(exc)) from None
        except ValueError:
            raise FhirInputError(f"line {number}", "is not valid JSON") from None
        if not isinstance(resource, dict):
            raise FhirInputError(f"line {number}", "must be a JSON object")
        yield resource


def resources_to_records(resources: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Our resources back to our JSON formats, diary entries and infusions apart."""
    records = mappings.from_resources(resources)
    answer: dict[str, list[dict[str, Any]]] = {"diary_entries": [], "infusions": []}
    for record in records:
        key = "infusions" if isinstance(record, r.InfusionRecord) else "diary_entries"
        answer[key].append(dump_record(record))
    for key, kind in (
        ("diary_entries", RecordKind.DIARY_ENTRY),
        ("infusions", RecordKind.INFUSION),
    ):
        metrics.records_converted(kind.value, len(answer[key]))
    log.info(
        "converted resources back to %d diary entries and %d infusions",
        len(answer["diary_entries"]),
        len(answer["infusions"]),
    )
    return answer

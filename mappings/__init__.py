"""Pure mapping core: diary entries and infusion records <-> FHIR R4 / R5 resources."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mappings import canonical
from mappings.bundle import TransactionStrategy, collection_bundle, transaction_bundle
from mappings.context import FhirVersion, MappingContext
from mappings.diary import diary_entry_to_observations, observations_to_diary_entry
from mappings.errors import InvalidInput, MappingError, NotOurResource
from mappings.identifiers import (
    DIARY_ENTRY,
    BusinessKey,
    business_identifier,
    record_key,
    resource_business_key,
    resource_id,
)
from mappings.infusion import infusion_record_to_resources, resources_to_infusion_record
from mappings.records import (
    CORE_RESOURCE_TYPES,
    DERIVED_RESOURCE_TYPES,
    DiaryEntry,
    InfusionRecord,
    Record,
)
from mappings.validate import check, validate_resource
from mappings.versions import detect_version, shape

__all__ = [
    "TransactionStrategy",
    "business_identifier",
    "collection_bundle",
    "from_resources",
    "record_key",
    "record_to_resources",
    "resource_id",
    "to_resources",
    "transaction_bundle",
]

MAPPED_TYPES = (*CORE_RESOURCE_TYPES, "QuestionnaireResponse", *DERIVED_RESOURCE_TYPES)


def record_to_resources(record: Record, ctx: MappingContext) -> list[dict[str, Any]]:
    """The validated FHIR resources for one record, in ctx.fhir_version."""
    shape(ctx.fhir_version)  # UnsupportedVersion early
    if isinstance(record, DiaryEntry):
        resources = diary_entry_to_observations(record, ctx)
    elif isinstance(record, InfusionRecord):
        resources = infusion_record_to_resources(record, ctx)
    else:
        raise MappingError(f"cannot map {type(record).__name__}")
    base = ctx.canonical_base if ctx.canonical_base is not None else canonical.configured()
    resources = [canonical.to_base(resource, base) for resource in resources]
    for resource in resources:
        validate_resource(resource, ctx.fhir_version)
    return resources


def to_resources(records: Iterable[Record], ctx: MappingContext) -> list[dict[str, Any]]:
    """The validated FHIR resources for many records, record by record."""
    return [res for record in records for res in record_to_resources(record, ctx)]


def _validate_given(resource: dict[str, Any]) -> None:
    version = detect_version(resource)
    error = check(resource, version)
    if error is not None and resource["resourceType"] == "Observation":
        # Observation looks the same in R4 and R5; accept it if either release does.
        version = FhirVersion.R5 if version == FhirVersion.R4 else FhirVersion.R4
        error = check(resource, version)
    if error is not None:
        raise InvalidInput(f"{resource['resourceType']} ({version}) is invalid: {error}")


def from_resources(resources: Iterable[dict[str, Any]]) -> list[Record]:
    """Our resources (R4 or R5, per resource) back to records, grouped by record id.

    Local codes may be under the default canonical base or the configured one."""
    groups: dict[tuple[str, str, str, str], tuple[BusinessKey, dict[str, dict[str, Any]]]] = {}
    for resource in resources:
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise InvalidInput("expected a FHIR resource (a JSON object with resourceType)")
        if resource["resourceType"] not in MAPPED_TYPES:
            raise NotOurResource(f"{resource['resourceType']} is not a type we map back")
        resource = canonical.to_default(resource)
        key = resource_business_key(resource)
        _validate_given(resource)
        group_id = key.record  # two patients' records with one id are two records
        _, parts = groups.setdefault(group_id, (key, {}))
        if key.part in parts:
            raise InvalidInput(f"{key.system}|{key.value} appears twice")
        parts[key.part] = resource
    records: list[Record] = []
    for key, parts in groups.values():
        try:
            if key.kind == DIARY_ENTRY:
                records.append(observations_to_diary_entry(key, parts))
            else:
                records.append(resources_to_infusion_record(key, parts))
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            raise InvalidInput(f"{key.kind} {key.source_id}: {err!r}") from err
    return records

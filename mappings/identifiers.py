"""Deterministic business identifiers and resource ids.

system = https://diarybridge.dev/fhir/sid/<app namespace>
value  = <kind>/<source id>/<part>      e.g. diary-entry/E-17/symptom-ptosis
id     = uuid5(NAMESPACE_URL, system|value)

Kind and part never contain "/", so the source id (which may) is everything in between.
The id is derived from the identifier, so the same record always yields the same ids.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from mappings.context import MappingContext
from mappings.errors import NotOurResource
from mappings.records import DiaryEntry, InfusionRecord

SYSTEM_PREFIX = "https://diarybridge.dev/fhir/sid/"

DIARY_ENTRY = "diary-entry"
INFUSION = "infusion"
KINDS: tuple[str, ...] = (DIARY_ENTRY, INFUSION)


@dataclass(frozen=True)
class BusinessKey:
    """A parsed business identifier: which app, which record, which part of it."""

    app_namespace: str
    kind: str
    source_id: str
    part: str

    @property
    def system(self) -> str:
        """The identifier system."""
        return identifier_system(self.app_namespace)

    @property
    def value(self) -> str:
        """The identifier value."""
        return f"{self.kind}/{self.source_id}/{self.part}"


def identifier_system(app_namespace: str) -> str:
    """The identifier system of one sending app."""
    return SYSTEM_PREFIX + app_namespace


def _namespace(ctx_or_namespace: MappingContext | str) -> str:
    if isinstance(ctx_or_namespace, MappingContext):
        return ctx_or_namespace.app_namespace
    return ctx_or_namespace


def business_key(
    ctx_or_namespace: MappingContext | str, kind: str, source_id: str, part: str
) -> BusinessKey:
    """The business key of one part of one record."""
    if "/" in kind or "/" in part:
        raise ValueError("kind and part must not contain '/'")
    return BusinessKey(_namespace(ctx_or_namespace), kind, source_id, part)


def resource_id(
    ctx_or_namespace: MappingContext | str, kind: str, source_id: str, part: str
) -> str:
    """The deterministic resource id (uuid5 of the business identifier)."""
    key = business_key(ctx_or_namespace, kind, source_id, part)
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{key.system}|{key.value}"))


def record_key(record: DiaryEntry | InfusionRecord) -> str:
    """The app's own id of a record."""
    return record.entry_id if isinstance(record, DiaryEntry) else record.infusion_id


def parse_identifier(system: str, value: str) -> BusinessKey | None:
    """The business key of an identifier of ours, or None when it is not one."""
    if not system.startswith(SYSTEM_PREFIX) or len(system) == len(SYSTEM_PREFIX):
        return None
    kind, sep, rest = value.partition("/")
    source_id, sep2, part = rest.rpartition("/")
    if not sep or not sep2 or kind not in KINDS or not source_id or not part:
        return None
    return BusinessKey(system[len(SYSTEM_PREFIX) :], kind, source_id, part)


def resource_business_key(resource: dict[str, Any]) -> BusinessKey:
    """The business key carried by a resource, or NotOurResource."""
    for ident in resource.get("identifier", []) or []:
        if not isinstance(ident, dict):
            continue
        system, value = ident.get("system"), ident.get("value")
        if isinstance(system, str) and isinstance(value, str):
            key = parse_identifier(system, value)
            if key is not None:
                return key
    raise NotOurResource(
        f"{resource.get('resourceType', '?')}/{resource.get('id', '?')} carries no identifier "
        f"under {SYSTEM_PREFIX}"
    )


def business_identifier(resource: dict[str, Any]) -> tuple[str, str]:
    """(system, value) of our business identifier on a resource."""
    key = resource_business_key(resource)
    return key.system, key.value

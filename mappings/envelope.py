"""The shared envelope of every resource we build: id, meta, identifier, subject, time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mappings import code_tables
from mappings.code_tables import Code
from mappings.context import MappingContext
from mappings.datatypes import codeable_concept, coding, date_time, identifier, patient_reference
from mappings.identifiers import BusinessKey, key_resource_id
from mappings.records import PatientRef

JSON = dict[str, Any]

EXTENSION_BASE = "https://diarybridge.dev/fhir/StructureDefinition/"
# Our local extensions; no standard element carries these values (see README of mappings).
EXT_TIME_NOT_REPORTED = EXTENSION_BASE + "time-not-reported"
EXT_DOSING_WEIGHT = EXTENSION_BASE + "dosing-weight"
EXT_INFUSED_VOLUME = EXTENSION_BASE + "infused-volume"
EXT_RATE_STEP = EXTENSION_BASE + "rate-step"  # read only: titration steps are now resources


def patient_reported_tag() -> JSON:
    """The meta.tag that marks data the patient reported themselves."""
    return coding(code_tables.code("local", "tags", "patient_reported"))


def envelope(
    resource_type: str,
    ctx: MappingContext,
    key: BusinessKey,
    *,
    patient_reported: bool = False,
    profiles: tuple[str, ...] = (),
) -> JSON:
    """resourceType, deterministic id, meta (source, profile, tag) and business identifier."""
    meta: JSON = {"source": ctx.source}
    if profiles:
        meta["profile"] = list(profiles)
    if patient_reported:
        meta["tag"] = [patient_reported_tag()]
    return {
        "resourceType": resource_type,
        "id": key_resource_id(key),
        "meta": meta,
        "identifier": [identifier(key.system, key.value)],
    }


def observation(
    ctx: MappingContext,
    key: BusinessKey,
    patient: PatientRef,
    effective: datetime,
    code: JSON,
    *,
    category: Code | None = None,
    patient_reported: bool = False,
    profiles: tuple[str, ...] = (),
) -> JSON:
    """An Observation with status final, subject, effectiveDateTime; the patient as performer
    when patient-reported. The caller adds value[x] / component."""
    obs = envelope("Observation", ctx, key, patient_reported=patient_reported, profiles=profiles)
    obs["status"] = "final"
    if category is not None:
        obs["category"] = [codeable_concept(category)]
    obs["code"] = code
    obs["subject"] = patient_reference(patient)
    obs["effectiveDateTime"] = date_time(effective)
    if patient_reported:
        obs["performer"] = [patient_reference(patient)]
    return obs


def has_extension(resource: JSON, url: str) -> bool:
    """Whether a resource carries an extension with this url."""
    return any(e.get("url") == url for e in resource.get("extension", []))


def extension_value(resource: JSON, url: str, value_key: str) -> Any:
    """The value[x] of the first extension with this url, or None."""
    for ext in resource.get("extension", []):
        if ext.get("url") == url:
            return ext.get(value_key)
    return None

"""Deterministic business identifiers and resource ids.

system = https://diarybridge.dev/fhir/sid/<app namespace>
value  = <kind>/<source id>/<part>      e.g. diary-entry/E-17/symptom-ptosis
         patient/<token>/<kind>/<source id>/<part>   when record ids are per patient
id     = uuid5(NAMESPACE_URL, system|value)

Kind and part never contain "/", so the source id (which may) is everything in between.
A patient-bound app (one credential per patient) numbers records per patient, so two patients
may both send "2026-11-02-evening": the patient's token (a hash of its key, so the identifier
carries no patient id of its own) makes them two records. The first segment of an unscoped
value is a kind, never "patient", so both forms parse without ambiguity.
The id is derived from the identifier, so the same record always yields the same ids.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from mappings.context import MappingContext
from mappings.errors import NotOurResource
from mappings.records import Record, RecordKind, record_id

SYSTEM_PREFIX = "https://diarybridge.dev/fhir/sid/"

# The kind segment is RecordKind's value; these names stay for the mappings that use them.
DIARY_ENTRY = RecordKind.DIARY_ENTRY
INFUSION = RecordKind.INFUSION
KINDS: tuple[str, ...] = tuple(RecordKind)
PATIENT_SCOPE = "patient"  # first segment of a value whose record id is per patient
_TOKEN_LENGTH = 32  # hex digits of sha256: 128 bits, as unlikely to collide as the uuid5 ids


@dataclass(frozen=True)
class BusinessKey:
    """A parsed business identifier: which app, which record, which part of it."""

    app_namespace: str
    kind: str
    source_id: str
    part: str
    patient_token: str = ""  # set when the record id is the patient's own (patient-bound app)

    @property
    def system(self) -> str:
        """The identifier system."""
        return identifier_system(self.app_namespace)

    @property
    def value(self) -> str:
        """The identifier value."""
        scope = f"{PATIENT_SCOPE}/{self.patient_token}/" if self.patient_token else ""
        return f"{scope}{self.kind}/{self.source_id}/{self.part}"

    @property
    def record(self) -> tuple[str, str, str, str]:
        """What identifies the record this part belongs to (for grouping parts)."""
        return (self.app_namespace, self.patient_token, self.kind, self.source_id)


def identifier_system(app_namespace: str) -> str:
    """The identifier system of one sending app."""
    return SYSTEM_PREFIX + app_namespace


def patient_token(patient_scope: str) -> str:
    """The token of a patient key ("Patient/123", "system|value") in scoped identifiers."""
    return hashlib.sha256(patient_scope.encode("utf-8")).hexdigest()[:_TOKEN_LENGTH]


def _scope(ctx_or_namespace: MappingContext | str) -> tuple[str, str]:
    if isinstance(ctx_or_namespace, MappingContext):
        scope = ctx_or_namespace.patient_scope
        return ctx_or_namespace.app_namespace, patient_token(scope) if scope else ""
    return ctx_or_namespace, ""


def business_key(
    ctx_or_namespace: MappingContext | str, kind: str, source_id: str, part: str
) -> BusinessKey:
    """The business key of one part of one record (scoped to the context's patient, if any)."""
    if "/" in kind or "/" in part:
        raise ValueError("kind and part must not contain '/'")
    namespace, token = _scope(ctx_or_namespace)
    return BusinessKey(namespace, kind, source_id, part, token)


def key_resource_id(key: BusinessKey) -> str:
    """The deterministic resource id of a business key (uuid5 of its identifier)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{key.system}|{key.value}"))


def resource_id(
    ctx_or_namespace: MappingContext | str, kind: str, source_id: str, part: str
) -> str:
    """The deterministic resource id (uuid5 of the business identifier)."""
    return key_resource_id(business_key(ctx_or_namespace, kind, source_id, part))


def record_key(record: Record) -> str:
    """The app's own id of a record."""
    return record_id(record)


def parse_identifier(system: str, value: str) -> BusinessKey | None:
    """The business key of an identifier of ours, or None when it is not one."""
    if not system.startswith(SYSTEM_PREFIX) or len(system) == len(SYSTEM_PREFIX):
        return None
    token = ""
    if value.startswith(PATIENT_SCOPE + "/"):
        token, sep0, value = value[len(PATIENT_SCOPE) + 1 :].partition("/")
        if not sep0 or len(token) != _TOKEN_LENGTH or token.strip("0123456789abcdef"):
            return None
    kind, sep, rest = value.partition("/")
    source_id, sep2, part = rest.rpartition("/")
    if not sep or not sep2 or kind not in KINDS or not source_id or not part:
        return None
    return BusinessKey(system[len(SYSTEM_PREFIX) :], kind, source_id, part, token)


def resource_business_key(resource: dict[str, Any]) -> BusinessKey:
    """The business key carried by a resource, or NotOurResource."""
    idents = resource.get("identifier", []) or []
    # QuestionnaireResponse.identifier and AdverseEvent.identifier are one
    # Identifier (0..1) in R4, a list elsewhere
    for ident in [idents] if isinstance(idents, dict) else idents:
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

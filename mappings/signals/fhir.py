"""A signal as FHIR: a Flag for the patient (active while it holds, inactive once resolved) and a
DetectedIssue whose evidence points at the diary Observations / infusion that raised it; and,
when a clinic asks for it, a Communication telling its care team (never the patient).

Ids are deterministic (uuid5 of our business identifier, mappings/identifiers.py), so sending a
signal again updates the same two resources instead of adding new ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from mappings import code_tables
from mappings.context import FhirVersion, MappingContext
from mappings.datatypes import codeable_concept, date_time, patient_reference, period
from mappings.envelope import envelope
from mappings.identifiers import business_key, identifier_system, resource_id
from mappings.records import PatientRef
from mappings.signals.evaluate import Evidence, Signal
from mappings.validate import validate_resource

JSON = dict[str, Any]
SIGNAL = "signal"  # the kind in our business identifiers of signal resources
FLAG_PART = "flag"
ISSUE_PART = "detected-issue"
COMMUNICATION_PART = "communication"
REVIEW_NOTE = "A prompt for review by the care team; not a diagnosis."
# The one R4/R5 difference these resources have: DetectedIssue.patient became .subject in R5.
ISSUE_PATIENT = {FhirVersion.R4: "patient", FhirVersion.R5: "subject"}
# Open, the episode may still gather evidence; once resolved the detection is complete.
ISSUE_STATUS = {True: "preliminary", False: "final"}
# Communication.payload: a string in R4; R5 keeps only Attachment, Reference, CodeableConcept.
PAYLOAD = {FhirVersion.R4: "contentString", FhirVersion.R5: "contentCodeableConcept"}
# A care-team recipient: a reference to one of these (Communication.recipient's targets).
RECIPIENT_TYPES = ("CareTeam", "Practitioner", "PractitionerRole", "Organization", "Group")

# (kind, record id, part) -> the server's id of that resource, when the caller knows it.
KnownIds = Mapping[tuple[str, str, str], str]


def _patient_token(patient: PatientRef) -> str:
    # Part of the key so two patients of one app never share a signal resource, even with equal
    # record ids; hashed to keep identifiers short and free of "/".
    text = patient.reference or f"{patient.identifier_system}|{patient.identifier_value}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def signal_source_id(signal: Signal) -> str:
    """The source id of a signal's resources: patient token and the signal's key."""
    return f"{_patient_token(signal.patient)}:{signal.key}"


def signal_resource_id(ctx: MappingContext, signal: Signal, part: str) -> str:
    """The deterministic id of a signal's Flag (part 'flag') or DetectedIssue."""
    return resource_id(ctx, SIGNAL, signal_source_id(signal), part)


def _evidence_reference(ctx: MappingContext, e: Evidence, known: KnownIds) -> JSON:
    key = business_key(ctx, e.kind, e.record_id, e.part)
    ref: JSON = {
        "type": e.resource_type,
        "identifier": {"system": identifier_system(ctx.app_namespace), "value": key.value},
    }
    server_id = known.get((e.kind, e.record_id, e.part))
    if server_id is not None:
        ref["reference"] = f"{e.resource_type}/{server_id}"
    return ref


def signal_to_resources(
    signal: Signal, ctx: MappingContext, known_ids: KnownIds | None = None
) -> list[JSON]:
    """[Flag, DetectedIssue] for one signal, validated for ctx.fhir_version.

    Evidence references carry our business identifier (logical reference), plus the literal
    reference where known_ids gives the server's id of that resource.
    """
    known = known_ids or {}
    source_id = signal_source_id(signal)
    code = codeable_concept(
        code_tables.code("local", "signals", signal.rule.id),
        text=f"{signal.rule.title}. {REVIEW_NOTE}",
    )
    flag = envelope("Flag", ctx, business_key(ctx, SIGNAL, source_id, FLAG_PART))
    flag["status"] = "active" if signal.active else "inactive"
    flag["category"] = [codeable_concept(code_tables.code("hl7", "flag_category", "clinical"))]
    flag["code"] = code
    flag["subject"] = patient_reference(signal.patient)
    flag["period"] = period(signal.opened_at, signal.resolved_at)

    issue = envelope("DetectedIssue", ctx, business_key(ctx, SIGNAL, source_id, ISSUE_PART))
    issue["status"] = ISSUE_STATUS[signal.active]
    issue["code"] = code
    issue["severity"] = signal.rule.severity
    issue[ISSUE_PATIENT[ctx.fhir_version]] = patient_reference(signal.patient)
    if signal.resolved_at is None:
        issue["identifiedDateTime"] = date_time(signal.opened_at)
    else:
        issue["identifiedPeriod"] = period(signal.opened_at, signal.resolved_at)
    issue["evidence"] = [{"detail": [_evidence_reference(ctx, e, known) for e in signal.evidence]}]
    issue["detail"] = signal.rule.text
    out = [flag, issue]
    for resource in out:
        validate_resource(resource, ctx.fhir_version)
    return out


def signal_communication(signal: Signal, ctx: MappingContext, recipient: str) -> JSON:
    """A Communication to the care team (`recipient`, e.g. "CareTeam/123") that a signal opened,
    about its Flag; validated for ctx.fhir_version. One per signal (deterministic id)."""
    kind, _, rid = recipient.partition("/")
    if kind not in RECIPIENT_TYPES or not rid:
        raise ValueError(f"care-team recipient must be one of {', '.join(RECIPIENT_TYPES)}/<id>")
    source_id = signal_source_id(signal)
    flag_key = business_key(ctx, SIGNAL, source_id, FLAG_PART)
    message = f"{signal.rule.title}. {signal.rule.text}"
    out = envelope("Communication", ctx, business_key(ctx, SIGNAL, source_id, COMMUNICATION_PART))
    out["status"] = "completed"
    out["priority"] = "urgent" if signal.rule.severity == "high" else "routine"
    out["subject"] = patient_reference(signal.patient)
    out["about"] = [
        {"type": "Flag", "identifier": {"system": flag_key.system, "value": flag_key.value}}
    ]
    out["recipient"] = [{"reference": recipient}]
    out["sent"] = date_time(signal.opened_at)
    content = message if ctx.fhir_version is FhirVersion.R4 else {"text": message}
    out["payload"] = [{PAYLOAD[ctx.fhir_version]: content}]
    validate_resource(out, ctx.fhir_version)
    return out

"""What a view needs from the request beyond its body: the caller, and the mapping context."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from flask import g

from mappings.context import FhirVersion, MappingContext, client_source
from service import wiring
from service.api.errors import ApiError
from service.schemas import RecordKind
from service.security import Principal, parse_patient_key, patient_key

# The resource type each of our formats mainly becomes: what a caller's scope must allow.
PRIMARY_TYPE = {
    RecordKind.DIARY_ENTRY: "Observation",
    RecordKind.INFUSION: "MedicationAdministration",
}


def principal() -> Principal:
    """The authenticated caller (set by the authentication hook before every protected view)."""
    caller: Principal = g.principal
    return caller


def no_such_patient() -> ApiError:
    """The one 404 of /patients/{id}/*: an unknown patient and another's answer alike."""
    return ApiError(HTTPStatus.NOT_FOUND, "not_found", "no such patient")


PATIENT_ID = r"[A-Za-z0-9.-]{1,64}"  # a FHIR id


def patient_reference(patient: str) -> str:
    """The path's patient id as "Patient/<id>"; an id no patient can have is no such patient."""
    if not re.fullmatch(PATIENT_ID, patient):
        raise no_such_patient()
    return f"Patient/{patient}"


def require_patient_read(patient: str, *resource_types: str) -> None:
    """Check the caller may read these types of `patient`'s data (a "Patient/x" key).

    A caller bound to one patient asking for any other, existing or not, gets the 404 an
    unknown patient gets: "not yours" is "not there", so the answer is no oracle. A missing
    scope (for its own patient, or an unbound caller's) stays a 403 that names the scope.
    """
    caller = principal()
    if caller.patient is not None:
        try:
            own = parse_patient_key(patient) == caller.patient
        except ValueError:
            own = False
        if not own:
            raise no_such_patient()
    for resource_type in resource_types:
        caller.require("read", resource_type, patient)


def sees_diagnostics() -> bool:
    """Whether the caller is an operator (system/* scope, no patient binding).

    Only they see a FHIR server's diagnostics: a server may quote the body it refused in them,
    and another client's or patient's notes and values must not reach a patient's app.
    """
    caller = principal()
    return caller.patient is None and any(scope.context == "system" for scope in caller.scopes)


def mapping_context(version: FhirVersion) -> MappingContext:
    """The caller's client id is its namespace in every business identifier we mint.

    A patient-bound caller's record ids are its patient's own: the patient scopes them, as
    sync does for records that caller sends first (ledger.accept).
    """
    caller = principal()
    return MappingContext(
        app_namespace=caller.client_id,
        source=client_source(caller.client_id),
        fhir_version=version,
        patient_scope=caller.patient,
        mg_adl_questionnaire_response=wiring.current().settings.mg_adl_questionnaire_response,
    )


def payload_patient_key(item: Any) -> str | None:
    patient = item.get("patient") if isinstance(item, dict) else None
    if not isinstance(patient, dict):
        return None
    ident = patient.get("identifier")
    try:
        if isinstance(patient.get("reference"), str):
            return patient_key(reference=patient["reference"])
        if isinstance(ident, dict) and all(
            isinstance(ident.get(name), str | None) for name in ("system", "value")
        ):  # a number as the value is for the schema to name, not a crash here (found by fuzzing)
            return patient_key(
                identifier_system=ident.get("system"), identifier_value=ident.get("value")
            )
    except ValueError:
        return None  # malformed: the schema will name the problem
    return None


def require_records(payload: Any, kind: RecordKind) -> Any:
    """Check the caller may write every patient named in the payload, before validating it.

    Checked first so a caller confined to one patient learns nothing (not even validation
    messages) about records of another patient.
    """
    caller = principal()
    items = payload if isinstance(payload, list) else [payload]
    for item in items:
        caller.require("write", PRIMARY_TYPE[kind], payload_patient_key(item))
    return payload


def require_resources_read(answer: dict[str, list[dict[str, Any]]]) -> None:
    """Check the caller may read the patients of records mapped back from FHIR."""
    caller = principal()
    for key, kind in (
        ("diary_entries", RecordKind.DIARY_ENTRY),
        ("infusions", RecordKind.INFUSION),
    ):
        for item in answer[key]:
            caller.require("read", PRIMARY_TYPE[kind], payload_patient_key(item))

"""Builders and readers for FHIR datatypes, each named after the datatype it returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mappings.code_tables import Code
from mappings.errors import InvalidInput, MappingError
from mappings.records import PatientRef

JSON = dict[str, Any]

UCUM = "http://unitsofmeasure.org"


def coding(entry: Code) -> JSON:
    """A Coding from a code-table entry."""
    return {"system": entry.system, "code": entry.code, "display": entry.display}


def codeable_concept(*entries: Code, text: str | None = None) -> JSON:
    """A CodeableConcept with one coding per entry and optional text."""
    concept: JSON = {}
    if entries:
        concept["coding"] = [coding(e) for e in entries]
    if text is not None:
        concept["text"] = text
    return concept


def quantity(value: float | None, unit: Code | None) -> JSON:
    """A Quantity; the unit is a UCUM code-table entry (display as unit, code as code)."""
    q: JSON = {}
    if value is not None:
        q["value"] = value
    if unit is not None:
        q.update({"unit": unit.display, "system": unit.system, "code": unit.code})
    return q


def ucum_quantity(value: float | None, ucum_code: str | None) -> JSON:
    """A Quantity in a free UCUM unit given by the record (e.g. a medication dose in mg)."""
    q: JSON = {}
    if value is not None:
        q["value"] = value
    if ucum_code is not None:
        q.update({"unit": ucum_code, "system": UCUM, "code": ucum_code})
    return q


def date_time(value: datetime) -> str:
    """A FHIR dateTime string that keeps the UTC offset (and microseconds when present)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise MappingError(f"FHIR dateTime needs a timezone-aware datetime, got {value!r}")
    return value.isoformat()


def period(start: datetime, end: datetime | None) -> JSON:
    """A Period; end is left out when unknown."""
    p: JSON = {"start": date_time(start)}
    if end is not None:
        p["end"] = date_time(end)
    return p


def reference(target: str, display: str | None = None) -> JSON:
    """A literal Reference ("Type/id", "#contained" or "urn:uuid:...")."""
    ref: JSON = {"reference": target}
    if display is not None:
        ref["display"] = display
    return ref


def patient_reference(patient: PatientRef) -> JSON:
    """The subject Reference: literal when the record has one, else a logical identifier."""
    if patient.reference is not None:
        return {"reference": patient.reference}
    return {"identifier": {"system": patient.identifier_system, "value": patient.identifier_value}}


def identifier(system: str, value: str) -> JSON:
    """An Identifier of use 'official' (our business identifier)."""
    return {"use": "official", "system": system, "value": value}


# Readers: the inverse of the builders above, raising InvalidInput with the path on bad shapes.


def read_date_time(value: Any, path: str) -> datetime:
    """A timezone-aware datetime from a FHIR dateTime string."""
    if not isinstance(value, str):
        raise InvalidInput(f"{path}: expected a dateTime string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise InvalidInput(f"{path}: {err}") from None
    if parsed.tzinfo is None:
        raise InvalidInput(f"{path}: dateTime without a timezone")
    return parsed


def read_patient(subject: Any, path: str) -> PatientRef:
    """A PatientRef from a subject Reference."""
    if not isinstance(subject, dict):
        raise InvalidInput(f"{path}: expected a Reference")
    if "reference" in subject:
        return PatientRef(reference=str(subject["reference"]))
    ident = subject.get("identifier")
    if isinstance(ident, dict):
        return PatientRef(
            identifier_system=ident.get("system"), identifier_value=ident.get("value")
        )
    raise InvalidInput(f"{path}: Reference has neither reference nor identifier")


def codings(concept: Any) -> list[JSON]:
    """The codings of a CodeableConcept (empty when absent)."""
    if not isinstance(concept, dict):
        return []
    found = concept.get("coding", [])
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def require(resource: JSON, key: str, path: str) -> Any:
    """resource[key], or InvalidInput naming the path."""
    if key not in resource:
        raise InvalidInput(f"{path}.{key}: required element missing")
    return resource[key]

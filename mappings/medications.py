"""A medication dose taken (diary) or given as premedication <-> MedicationAdministration."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mappings import code_tables, versions
from mappings.context import MappingContext
from mappings.datatypes import (
    coding,
    codings,
    date_time,
    patient_reference,
    read_date_time,
    reference,
    ucum_quantity,
)
from mappings.envelope import EXT_TIME_NOT_REPORTED, envelope, has_extension
from mappings.errors import InvalidInput
from mappings.identifiers import BusinessKey
from mappings.records import MedicationTaken, PatientRef

JSON = dict[str, Any]

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def medication_concept(name: str | None, rxnorm: str | None) -> JSON:
    """medicationCodeableConcept: the app's RxNorm coding when given, the WHO ATC coding when
    the name names one substance of atc.yaml (derived, so reading back ignores it), the name
    as text."""
    concept: JSON = {}
    codings_: list[JSON] = []
    if rxnorm is not None:
        codings_.append({"system": RXNORM, "code": rxnorm})
    atc = code_tables.substance_code(name)
    if atc is not None:
        codings_.append(coding(atc))
    if codings_:
        concept["coding"] = codings_
    if name is not None:
        concept["text"] = name
    return concept


def read_medication_concept(concept: JSON) -> tuple[str | None, str | None]:
    """(name, rxnorm) from a medication CodeableConcept."""
    rxnorm = next((str(c["code"]) for c in codings(concept) if c.get("system") == RXNORM), None)
    text = concept.get("text")
    return (str(text) if text is not None else None), rxnorm


def medication_taken_to_administration(
    ctx: MappingContext,
    key: BusinessKey,
    patient: PatientRef,
    medication: MedicationTaken,
    *,
    fallback_time: datetime,
    patient_reported: bool,
    recorded: datetime | None = None,
    part_of: str | None = None,
) -> JSON:
    """One MedicationAdministration; when the dose time is unknown the fallback time is used
    and flagged with a local extension so the record round trips."""
    version = ctx.fhir_version
    ma = envelope("MedicationAdministration", ctx, key, patient_reported=patient_reported)
    if medication.taken_at is None:
        ma["extension"] = [{"url": EXT_TIME_NOT_REPORTED, "valueBoolean": True}]
    if recorded is not None:
        versions.set_recorded(ma, version, date_time(recorded))
    if part_of is not None:
        ma["partOf"] = [reference(part_of)]
    ma["status"] = "completed"
    versions.set_medication(
        ma, version, concept=medication_concept(medication.name, medication.rxnorm)
    )
    ma["subject"] = patient_reference(patient)
    when = medication.taken_at if medication.taken_at is not None else fallback_time
    versions.set_occurrence(ma, version, date_time(when))
    if patient_reported:
        ma["performer"] = [versions.performer(version, patient_reference(patient))]
    if medication.dose is not None or medication.dose_unit is not None:
        ma["dosage"] = {"dose": ucum_quantity(medication.dose, medication.dose_unit)}
    return ma


def administration_to_medication_taken(ma: JSON) -> MedicationTaken:
    """The MedicationTaken a MedicationAdministration of ours carries."""
    _, concept = versions.get_medication(ma)
    if concept is None:
        raise InvalidInput("MedicationAdministration: expected a medication concept")
    name, rxnorm = read_medication_concept(concept)
    if name is None:
        raise InvalidInput("MedicationAdministration.medication: text (the name) missing")
    occurrence = versions.get_occurrence(ma)
    taken_at = None
    if not has_extension(ma, EXT_TIME_NOT_REPORTED):
        taken_at = read_date_time(occurrence, "MedicationAdministration.effective")
    dose_q = ma.get("dosage", {}).get("dose", {})
    dose = dose_q.get("value")
    unit = dose_q.get("code")
    return MedicationTaken(
        name=name,
        rxnorm=rxnorm,
        dose=float(dose) if dose is not None else None,
        dose_unit=str(unit) if unit is not None else None,
        taken_at=taken_at,
    )

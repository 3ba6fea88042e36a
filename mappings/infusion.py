"""Infusion record <-> MedicationAdministration (+ premedications, + adverse-reaction
Observations that point at the administration via partOf)."""

from __future__ import annotations

from typing import Any

from mappings import code_tables, versions
from mappings.context import MappingContext
from mappings.datatypes import (
    codeable_concept,
    codings,
    date_time,
    patient_reference,
    period,
    quantity,
    read_date_time,
    read_patient,
    reference,
    require,
)
from mappings.diary import read_severity, read_symptom_coding
from mappings.envelope import (
    EXT_DOSING_WEIGHT,
    EXT_INFUSED_VOLUME,
    EXT_RATE_STEP,
    envelope,
    extension_value,
    observation,
)
from mappings.errors import InvalidInput
from mappings.identifiers import INFUSION, BusinessKey, business_key, resource_id
from mappings.medications import (
    administration_to_medication_taken,
    medication_concept,
    medication_taken_to_administration,
    read_medication_concept,
)
from mappings.records import (
    Access,
    AdverseReaction,
    InfusionRecord,
    InfusionStatus,
    MedicationTaken,
    Performer,
    Product,
    RateStep,
    Reason,
    Route,
    Setting,
)

JSON = dict[str, Any]

ADMINISTRATION = "administration"
PREMEDICATION_PREFIX = "premedication-"
REACTION_PREFIX = "reaction-"
PRODUCT_ID = "product"

# records.InfusionStatus -> MedicationAdministration.status (same codes in R4 and R5).
STATUS: dict[InfusionStatus, str] = {
    InfusionStatus.COMPLETED: "completed",
    InfusionStatus.IN_PROGRESS: "in-progress",
    InfusionStatus.STOPPED: "stopped",
    InfusionStatus.NOT_DONE: "not-done",
}
STATUS_BACK: dict[str, InfusionStatus] = {v: k for k, v in STATUS.items()}


def administration_reference(ctx: MappingContext, infusion_id: str) -> str:
    """The literal reference to the main MedicationAdministration of an infusion."""
    return "MedicationAdministration/" + resource_id(ctx, INFUSION, infusion_id, ADMINISTRATION)


def infusion_record_to_resources(record: InfusionRecord, ctx: MappingContext) -> list[JSON]:
    """The administration, its premedications and adverse reactions (not yet validated)."""
    main_ref = administration_reference(ctx, record.infusion_id)
    out = [_administration(record, ctx)]
    for index, premed in enumerate(record.premedications):
        key = business_key(ctx, INFUSION, record.infusion_id, f"{PREMEDICATION_PREFIX}{index}")
        out.append(
            medication_taken_to_administration(
                ctx,
                key,
                record.patient,
                premed,
                fallback_time=record.start,
                patient_reported=False,
                part_of=main_ref,
            )
        )
    for index, reaction in enumerate(record.adverse_reactions):
        key = business_key(ctx, INFUSION, record.infusion_id, f"{REACTION_PREFIX}{index}")
        o = observation(
            ctx,
            key,
            record.patient,
            reaction.onset,
            codeable_concept(code_tables.symptom_code(reaction.symptom.value)),
        )
        o["partOf"] = [reference(main_ref)]
        o["valueCodeableConcept"] = codeable_concept(
            code_tables.code("snomed", "severity", reaction.severity.value)
        )
        out.append(o)
    return out


def _administration(record: InfusionRecord, ctx: MappingContext) -> JSON:
    version = ctx.fhir_version
    key = business_key(ctx, INFUSION, record.infusion_id, ADMINISTRATION)
    ma = envelope("MedicationAdministration", ctx, key)
    medication: JSON = {"resourceType": "Medication", "id": PRODUCT_ID}
    product_code = medication_concept(record.product.brand, record.product.rxnorm)
    if product_code:
        medication["code"] = product_code
    if record.lot_number is not None:
        medication["batch"] = {"lotNumber": record.lot_number}
    ma["contained"] = [medication]
    ma["extension"] = _extensions(record)
    if not ma["extension"]:
        del ma["extension"]
    ma["status"] = STATUS[record.status]
    if record.status_reason is not None:
        ma["statusReason"] = [{"text": record.status_reason}]
    if record.setting is not None:
        versions.set_category(
            ma,
            version,
            codeable_concept(
                code_tables.code("hl7", versions.category_section(version), record.setting.value)
            ),
        )
    versions.set_medication(ma, version, reference="#" + PRODUCT_ID)
    ma["subject"] = patient_reference(record.patient)
    versions.set_occurrence(ma, version, period(record.start, record.end))
    if record.performer is not None:
        actor = {
            k: v
            for k, v in (
                ("reference", record.performer.reference),
                ("display", record.performer.display),
            )
            if v is not None
        }
        ma["performer"] = [versions.performer(version, actor)]
    versions.set_reasons(
        ma, version, [codeable_concept(code_tables.code("snomed", "reason", record.reason.value))]
    )
    if record.access is not None:
        versions.set_device(
            ma, version, codeable_concept(code_tables.code("local", "access", record.access.value))
        )
    if record.note is not None:
        ma["note"] = [{"text": record.note}]
    ma["dosage"] = _dosage(record)
    return ma


def _extensions(record: InfusionRecord) -> list[JSON]:
    units = code_tables.table("ucum")
    ext: list[JSON] = []
    if record.dosing_weight_kg is not None:
        ext.append(
            {
                "url": EXT_DOSING_WEIGHT,
                "valueQuantity": quantity(record.dosing_weight_kg, units.get("units", "kg")),
            }
        )
    if record.volume_ml is not None:
        ext.append(
            {
                "url": EXT_INFUSED_VOLUME,
                "valueQuantity": quantity(record.volume_ml, units.get("units", "ml")),
            }
        )
    # Titration has no standard element (dosage.rate[x] holds one rate), so every step goes
    # into a complex extension: when it started and the pump rate from then on.
    for step in record.rate_steps:
        ext.append(
            {
                "url": EXT_RATE_STEP,
                "extension": [
                    {"url": "at", "valueDateTime": date_time(step.at)},
                    {
                        "url": "rate",
                        "valueQuantity": quantity(
                            step.ml_per_hour, units.get("units", "ml_per_hour")
                        ),
                    },
                ],
            }
        )
    return ext


def _dosage(record: InfusionRecord) -> JSON:
    units = code_tables.table("ucum")
    text = f"{record.dose_g:g} g intravenous immunoglobulin"
    per_kg = record.dose_g_per_kg
    if per_kg is not None and record.dosing_weight_kg is not None:
        text += f" ({per_kg:.3g} g/kg at a dosing weight of {record.dosing_weight_kg:g} kg)"
    dosage: JSON = {
        "text": text,
        "route": codeable_concept(code_tables.code("snomed", "route", record.route.value)),
        "dose": quantity(record.dose_g, units.get("units", "g")),
    }
    if len(record.rate_steps) == 1:
        dosage["rateQuantity"] = quantity(
            record.rate_steps[0].ml_per_hour, units.get("units", "ml_per_hour")
        )
    return dosage


def resources_to_infusion_record(key: BusinessKey, parts: dict[str, JSON]) -> InfusionRecord:
    """The infusion record whose parts (part name -> resource) are given."""
    ma = parts.get(ADMINISTRATION)
    if ma is None:
        raise InvalidInput(f"infusion {key.source_id}: the MedicationAdministration is missing")
    path = "MedicationAdministration"
    premeds: list[tuple[int, MedicationTaken]] = []
    reactions: list[tuple[int, AdverseReaction]] = []
    for part, res in parts.items():
        if part.startswith(PREMEDICATION_PREFIX):
            premeds.append(
                (_index(part, PREMEDICATION_PREFIX), administration_to_medication_taken(res))
            )
        elif part.startswith(REACTION_PREFIX):
            reactions.append((_index(part, REACTION_PREFIX), _read_reaction(res)))
        elif part != ADMINISTRATION:
            raise InvalidInput(f"infusion {key.source_id}: unknown part {part}")
    occurrence = versions.get_occurrence(ma)
    if not isinstance(occurrence, dict):
        raise InvalidInput(f"{path}: expected an effective/occurence Period")
    status = STATUS_BACK.get(str(require(ma, "status", path)))
    if status is None:
        raise InvalidInput(f"{path}.status: {ma.get('status')} is not one we map")
    dosage = require(ma, "dosage", path)
    end = occurrence.get("end")
    return InfusionRecord(
        infusion_id=key.source_id,
        patient=read_patient(require(ma, "subject", path), path + ".subject"),
        product=_read_product(ma),
        dose_g=float(require(require(dosage, "dose", path), "value", path + ".dosage.dose")),
        start=read_date_time(require(occurrence, "start", path), path + ".period.start"),
        status=status,
        end=read_date_time(end, path + ".period.end") if end is not None else None,
        lot_number=_read_lot(ma),
        dosing_weight_kg=_ext_quantity(ma, EXT_DOSING_WEIGHT),
        volume_ml=_ext_quantity(ma, EXT_INFUSED_VOLUME),
        rate_steps=_read_rate_steps(ma),
        route=_read_coded(dosage.get("route"), "snomed", "route", Route, path + ".dosage.route"),
        access=_read_access(ma),
        setting=_read_setting(ma),
        status_reason=_read_status_reason(ma),
        premedications=tuple(p for _, p in sorted(premeds, key=lambda ip: ip[0])),
        reason=_read_reason(ma),
        performer=_read_performer(ma),
        adverse_reactions=tuple(r for _, r in sorted(reactions, key=lambda ir: ir[0])),
        note=_read_note(ma),
    )


def _index(part: str, prefix: str) -> int:
    try:
        return int(part[len(prefix) :])
    except ValueError:
        raise InvalidInput(f"bad part index in {part}") from None


def _read_reaction(res: JSON) -> AdverseReaction:
    path = "Observation"
    return AdverseReaction(
        symptom=read_symptom_coding(require(res, "code", path), path),
        severity=read_severity(require(res, "valueCodeableConcept", path), path),
        onset=read_date_time(require(res, "effectiveDateTime", path), path + ".effective"),
    )


def _read_product(ma: JSON) -> Product:
    reference_, concept = versions.get_medication(ma)
    if concept is None and reference_ is not None and reference_.startswith("#"):
        med = _contained(ma, "Medication", reference_[1:])
        concept = med.get("code", {})
    brand, rxnorm = read_medication_concept(concept or {})
    return Product(brand=brand, rxnorm=rxnorm)


def _read_lot(ma: JSON) -> str | None:
    reference_, _ = versions.get_medication(ma)
    if reference_ is None or not reference_.startswith("#"):
        return None
    lot = _contained(ma, "Medication", reference_[1:]).get("batch", {}).get("lotNumber")
    return str(lot) if lot is not None else None


def _contained(ma: JSON, resource_type: str, local_id: str) -> JSON:
    for res in ma.get("contained", []):
        if res.get("resourceType") == resource_type and res.get("id") == local_id:
            return dict(res)
    raise InvalidInput(f"MedicationAdministration: contained {resource_type} #{local_id} missing")


def _ext_quantity(ma: JSON, url: str) -> float | None:
    q = extension_value(ma, url, "valueQuantity")
    return float(q["value"]) if isinstance(q, dict) and "value" in q else None


def _read_rate_steps(ma: JSON) -> tuple[RateStep, ...]:
    steps = []
    for ext in ma.get("extension", []):
        if ext.get("url") != EXT_RATE_STEP:
            continue
        at = extension_value(ext, "at", "valueDateTime")
        rate = extension_value(ext, "rate", "valueQuantity")
        if at is None or not isinstance(rate, dict):
            raise InvalidInput("MedicationAdministration.extension: incomplete rate-step")
        steps.append(
            RateStep(at=read_date_time(at, "rate-step.at"), ml_per_hour=float(rate["value"]))
        )
    return tuple(steps)


def _read_coded(concept: Any, table: str, section: str, enum: Any, path: str) -> Any:
    for c in codings(concept):
        found = code_tables.table(table).key_of(section, c.get("system"), c.get("code"))
        if found is not None:
            return enum(found)
    raise InvalidInput(f"{path}: not one of our codes")


def _read_access(ma: JSON) -> Access | None:
    concept = versions.get_device_concept(ma)
    if concept is None:
        return None
    result: Access = _read_coded(concept, "local", "access", Access, "device")
    return result


def _read_setting(ma: JSON) -> Setting | None:
    hl7 = code_tables.table("hl7")
    for concept in versions.get_categories(ma):
        for c in codings(concept):
            for section in ("admin_category_r4", "admin_location_r5"):
                found = hl7.key_of(section, c.get("system"), c.get("code"))
                if found is not None:
                    return Setting(found)
    return None


def _read_status_reason(ma: JSON) -> str | None:
    for reason in ma.get("statusReason", []):
        if "text" in reason:
            return str(reason["text"])
    return None


def _read_reason(ma: JSON) -> Reason:
    for concept in versions.get_reasons(ma):
        for c in codings(concept):
            found = code_tables.table("snomed").key_of("reason", c.get("system"), c.get("code"))
            if found is not None:
                return Reason(found)
    raise InvalidInput("MedicationAdministration.reason: not one of our reason codes")


def _read_performer(ma: JSON) -> Performer | None:
    for entry in ma.get("performer", []):
        actor = versions.get_performer_actor(entry)
        return Performer(reference=actor.get("reference"), display=actor.get("display"))
    return None


def _read_note(ma: JSON) -> str | None:
    for note in ma.get("note", []):
        if "text" in note:
            return str(note["text"])
    return None

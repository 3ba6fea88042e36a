"""Infusion record <-> MedicationAdministration (+ premedications, + one MedicationAdministration
per titration step, + symptom Observations of a reaction and the AdverseEvent that names the
infusion as its suspected cause)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mappings import code_tables, versions
from mappings.context import MappingContext
from mappings.datatypes import (
    codeable_concept,
    coding,
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
    Performer,
    Product,
    RateStep,
    Reason,
    Route,
    Setting,
    Severity,
)

JSON = dict[str, Any]

ADMINISTRATION = "administration"
PREMEDICATION_PREFIX = "premedication-"
REACTION_PREFIX = "reaction-"
RATE_STEP_PREFIX = "rate-step-"
ADVERSE_EVENT = "adverse-event"
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
    out.extend(_rate_steps(record, ctx, main_ref))
    symptom_refs = []
    for index, reaction in enumerate(record.adverse_reactions):
        key = business_key(ctx, INFUSION, record.infusion_id, f"{REACTION_PREFIX}{index}")
        o = observation(
            ctx,
            key,
            record.patient,
            reaction.onset,
            codeable_concept(code_tables.symptom_code(reaction.symptom.value)),
        )
        # No partOf: a reaction is not a step of the infusion; the AdverseEvent below links
        # the symptoms to their suspected cause.
        o["valueCodeableConcept"] = codeable_concept(
            code_tables.code("snomed", "severity", reaction.severity.value)
        )
        out.append(o)
        symptom_refs.append(f"Observation/{o['id']}")
    if record.adverse_reactions:
        # Last: it references the administration and the symptoms, which are written first.
        out.append(_adverse_event(record, ctx, main_ref, symptom_refs))
    return out


def _adverse_event(
    record: InfusionRecord, ctx: MappingContext, main_ref: str, symptom_refs: list[str]
) -> JSON:
    """One AdverseEvent per infusion with reactions: the record keeps no episodes, so all
    reactions to one infusion (the "IVIG flu" of that course day) are one episode. It occurred
    at the first onset, as bad as the worst symptom. No causality: the diary carries the
    patient's attribution, not an assessment by anyone; no outcome: the record has none."""
    key = business_key(ctx, INFUSION, record.infusion_id, ADVERSE_EVENT)
    ae = envelope("AdverseEvent", ctx, key)
    first = min(record.adverse_reactions, key=lambda r: r.onset)
    order = list(Severity)
    worst = max(record.adverse_reactions, key=lambda r: order.index(r.severity))
    ae["subject"] = patient_reference(record.patient)
    versions.shape_adverse_event(
        ae,
        ctx.fhir_version,
        event=codeable_concept(code_tables.code("local", "adverse_event", "infusion_reaction")),
        occurred=date_time(first.onset),
        severity=codeable_concept(
            code_tables.code("hl7", "adverse_event_severity", worst.severity.value)
        ),
        suspect=main_ref,
        supporting=symptom_refs,
    )
    return ae


def _rate_steps(record: InfusionRecord, ctx: MappingContext, main_ref: str) -> list[JSON]:
    """Each titration step as its own MedicationAdministration partOf the whole infusion, with
    its rate and the period it ran (until the next step, the last one until the infusion ended):
    the R4 comment on dosage.rate[x] asks for a distinct administration per rate change."""
    version = ctx.fhir_version
    units = code_tables.table("ucum")
    steps = record.rate_steps
    out = []
    for index, step in enumerate(steps):
        key = business_key(ctx, INFUSION, record.infusion_id, f"{RATE_STEP_PREFIX}{index}")
        ma = envelope("MedicationAdministration", ctx, key)
        ma["contained"] = [_medication(record)]
        last = index == len(steps) - 1
        if last or record.status is InfusionStatus.NOT_DONE:
            ma["status"] = STATUS[record.status]
        else:
            ma["status"] = STATUS[InfusionStatus.COMPLETED]  # a later step followed it
        ma["partOf"] = [reference(main_ref)]
        versions.set_medication(ma, version, reference="#" + PRODUCT_ID)
        ma["subject"] = patient_reference(record.patient)
        end = record.end if last else steps[index + 1].at
        if end is not None and end < step.at:
            end = None  # never a backwards period
        versions.set_occurrence(ma, version, period(step.at, end))
        ma["dosage"] = {
            "route": codeable_concept(code_tables.code("snomed", "route", record.route.value)),
            "rateQuantity": quantity(step.ml_per_hour, units.get("units", "ml_per_hour")),
        }
        out.append(ma)
    return out


def _medication(record: InfusionRecord) -> JSON:
    medication: JSON = {"resourceType": "Medication", "id": PRODUCT_ID}
    product_code = medication_concept(record.product.brand, record.product.rxnorm)
    # Every infusion is IVIG, whatever its brand: the ATC coding lets an EHR reconcile it.
    # Derived, so reading back ignores it (read_medication_concept keeps RxNorm and text).
    ivig = coding(code_tables.code("atc", "products", "ivig"))
    medication["code"] = {
        "coding": [*product_code.get("coding", []), ivig],
        **{k: v for k, v in product_code.items() if k != "coding"},
    }
    if record.lot_number is not None:
        medication["batch"] = {"lotNumber": record.lot_number}
    return medication


def _administration(record: InfusionRecord, ctx: MappingContext) -> JSON:
    version = ctx.fhir_version
    key = business_key(ctx, INFUSION, record.infusion_id, ADMINISTRATION)
    ma = envelope("MedicationAdministration", ctx, key)
    ma["contained"] = [_medication(record)]
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
    return dosage  # the rates are on the step administrations (_rate_steps)


def resources_to_infusion_record(key: BusinessKey, parts: dict[str, JSON]) -> InfusionRecord:
    """The infusion record whose parts (part name -> resource) are given."""
    ma = parts.get(ADMINISTRATION)
    if ma is None:
        raise InvalidInput(f"infusion {key.source_id}: the MedicationAdministration is missing")
    path = "MedicationAdministration"
    listed, adverse_event = _numbered_parts(key, parts)
    occurrence, status = _occurrence_and_status(ma, path)
    dosage = require(ma, "dosage", path)
    end = occurrence.get("end")
    if adverse_event is not None:
        _check_adverse_event(adverse_event)
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
        rate_steps=listed[RATE_STEP_PREFIX] or _read_legacy_rate_steps(ma),
        route=_read_coded(dosage.get("route"), "snomed", "route", Route, path + ".dosage.route"),
        access=_read_access(ma),
        setting=_read_setting(ma),
        status_reason=_read_status_reason(ma),
        premedications=listed[PREMEDICATION_PREFIX],
        reason=_read_reason(ma),
        performer=_read_performer(ma),
        adverse_reactions=listed[REACTION_PREFIX],
        note=_read_note(ma),
    )


def _numbered_parts(
    key: BusinessKey, parts: dict[str, JSON]
) -> tuple[dict[str, tuple[Any, ...]], JSON | None]:
    """The numbered parts (premedications, reactions, rate steps) by prefix, each in index
    order, and the AdverseEvent if there is one; an unknown part is an error."""
    found: dict[str, list[tuple[int, Any]]] = {prefix: [] for prefix, _ in NUMBERED_PARTS}
    adverse_event = None
    for part, res in parts.items():
        numbered = next(((p, read) for p, read in NUMBERED_PARTS if part.startswith(p)), None)
        if numbered is not None:
            prefix, read = numbered
            found[prefix].append((_index(part, prefix), read(res)))
        elif part == ADVERSE_EVENT:
            adverse_event = res
        elif part != ADMINISTRATION:
            raise InvalidInput(f"infusion {key.source_id}: unknown part {part}")
    listed = {
        prefix: tuple(value for _, value in sorted(values, key=lambda iv: iv[0]))
        for prefix, values in found.items()
    }
    return listed, adverse_event


def _occurrence_and_status(ma: JSON, path: str) -> tuple[JSON, InfusionStatus]:
    occurrence = versions.get_occurrence(ma)
    if not isinstance(occurrence, dict):
        raise InvalidInput(f"{path}: expected an effective/occurence Period")
    status = STATUS_BACK.get(str(require(ma, "status", path)))
    if status is None:
        raise InvalidInput(f"{path}.status: {ma.get('status')} is not one we map")
    return occurrence, status


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


def _read_rate_step(res: JSON) -> RateStep:
    path = "MedicationAdministration (rate step)"
    occurrence = versions.get_occurrence(res)
    if not isinstance(occurrence, dict):
        raise InvalidInput(f"{path}: expected an effective/occurence Period")
    rate = require(require(res, "dosage", path), "rateQuantity", path + ".dosage")
    return RateStep(
        at=read_date_time(require(occurrence, "start", path), path + ".period.start"),
        ml_per_hour=float(require(rate, "value", path + ".dosage.rateQuantity")),
    )


def _check_adverse_event(ae: JSON) -> None:
    # Everything it says is derived from the record (its symptoms carry onset and severity),
    # so reading back only checks that it is the shape we write. Its symptoms may be absent
    # (an export or pull of some types only); they, not it, carry the reactions.
    suspects, _ = versions.get_adverse_event_links(ae)
    if ae.get("actuality") != "actual" or not suspects:
        raise InvalidInput("AdverseEvent: expected an actual event with a suspect entity")


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


def _read_legacy_rate_steps(ma: JSON) -> tuple[RateStep, ...]:
    # Resources written before titration steps became administrations of their own carry
    # them in our rate-step extension; servers still hold those.
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


# The numbered parts of an infusion: identifier part prefix -> how one is read back.
NUMBERED_PARTS: tuple[tuple[str, Callable[[JSON], Any]], ...] = (
    (PREMEDICATION_PREFIX, administration_to_medication_taken),
    (REACTION_PREFIX, _read_reaction),
    (RATE_STEP_PREFIX, _read_rate_step),
)

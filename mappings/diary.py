"""Diary entry <-> Observations (one per part) and MedicationAdministrations (one per dose)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mappings import code_tables, versions
from mappings.code_tables import Code
from mappings.context import MappingContext
from mappings.datatypes import (
    codeable_concept,
    codings,
    quantity,
    read_date_time,
    read_patient,
    reference,
    require,
)
from mappings.envelope import observation
from mappings.errors import InvalidInput, MappingError
from mappings.identifiers import DIARY_ENTRY, BusinessKey, business_key
from mappings.medications import (
    administration_to_medication_taken,
    medication_taken_to_administration,
)
from mappings.questionnaire import mg_adl_response, read_mg_adl_response
from mappings.records import (
    MG_ADL_ITEMS,
    DiaryEntry,
    MedicationTaken,
    MgAdl,
    Severity,
    Symptom,
    SymptomRating,
    VitalSigns,
)

JSON = dict[str, Any]

PROFILE_BASE = "http://hl7.org/fhir/StructureDefinition/"


@dataclass(frozen=True)
class VitalSign:
    """How one single-valued vital sign maps: VitalSigns field, part, codes, unit, profile."""

    field: str
    part: str
    loinc_keys: tuple[str, ...]
    unit_key: str
    profile: str
    is_int: bool


# The FHIR vital-signs profiles (http://hl7.org/fhir/R4/observation-vitalsigns.html).
VITAL_SIGNS: tuple[VitalSign, ...] = (
    VitalSign(
        "body_temperature_c",
        "vital-body-temperature",
        ("body_temperature",),
        "celsius",
        "bodytemp",
        is_int=False,
    ),
    VitalSign(
        "heart_rate_bpm",
        "vital-heart-rate",
        ("heart_rate",),
        "per_minute",
        "heartrate",
        is_int=True,
    ),
    VitalSign(
        "body_weight_kg", "vital-body-weight", ("body_weight",), "kg", "bodyweight", is_int=False
    ),
    VitalSign(
        "spo2_percent", "vital-spo2", ("spo2", "spo2_arterial"), "percent", "oxygensat", is_int=True
    ),
)
BLOOD_PRESSURE_PART = "vital-blood-pressure"
BP_COMPONENTS: tuple[tuple[str, str], ...] = (
    ("systolic_mmhg", "systolic"),
    ("diastolic_mmhg", "diastolic"),
)

MG_ADL_PART = "mg-adl"
MG_ADL_RESPONSE_PART = "mg-adl-response"  # the QuestionnaireResponse, when ctx asks for it
SYMPTOM_PREFIX = "symptom-"
MEDICATION_PREFIX = "medication-"


def _survey() -> Code:
    return code_tables.code("hl7", "observation_category", "survey")


def _local(key: str) -> Code:
    return code_tables.code("local", "observations", key)


def diary_entry_to_observations(entry: DiaryEntry, ctx: MappingContext) -> list[JSON]:
    """All resources for one diary entry, in a stable order (not yet validated)."""
    out: list[JSON] = []

    def key(part: str) -> BusinessKey:
        return business_key(ctx, DIARY_ENTRY, entry.entry_id, part)

    def obs(part: str, code: JSON, category: Code | None, profiles: tuple[str, ...] = ()) -> JSON:
        return observation(
            ctx,
            key(part),
            entry.patient,
            entry.recorded_at,
            code,
            category=category,
            patient_reported=True,
            profiles=profiles,
        )

    if entry.mg_adl is not None:
        o = obs(MG_ADL_PART, codeable_concept(_local("mg_adl_total")), _survey())
        o["valueInteger"] = entry.mg_adl.total
        o["component"] = [
            {
                "code": codeable_concept(code_tables.code("local", "mg_adl_items", item)),
                "valueInteger": getattr(entry.mg_adl, item),
            }
            for item in MG_ADL_ITEMS
        ]
        out.append(o)
        if ctx.mg_adl_questionnaire_response:
            qr = mg_adl_response(
                ctx, key(MG_ADL_RESPONSE_PART), entry.patient, entry.recorded_at, entry.mg_adl
            )
            o["derivedFrom"] = [reference(f"QuestionnaireResponse/{qr['id']}")]
            out.append(qr)
    for part, field in (("fatigue", "fatigue"), ("muscle-weakness", "muscle_weakness")):
        value = getattr(entry, field)
        if value is not None:
            o = obs(part, codeable_concept(_local(field)), _survey())
            o["valueInteger"] = value
            out.append(o)
    seen: set[Symptom] = set()
    for rating in entry.symptoms:
        if rating.symptom in seen:
            raise MappingError(f"diary entry {entry.entry_id}: symptom {rating.symptom} twice")
        seen.add(rating.symptom)
        o = obs(
            SYMPTOM_PREFIX + rating.symptom.value,
            codeable_concept(code_tables.symptom_code(rating.symptom.value)),
            _survey(),
        )
        o["valueCodeableConcept"] = codeable_concept(
            code_tables.code("snomed", "severity", rating.severity.value)
        )
        out.append(o)
    if entry.vitals is not None:
        out.extend(_vital_sign_observations(entry.vitals, obs))
    if entry.flare_up is not None:
        o = obs("flare-up", codeable_concept(_local("flare_up")), _survey())
        o["valueBoolean"] = entry.flare_up
        out.append(o)
    if entry.fluids_ml is not None:
        o = obs("fluids", codeable_concept(code_tables.code("loinc", "intake", "fluids")), None)
        o["valueQuantity"] = quantity(
            entry.fluids_ml, code_tables.code("ucum", "units", "ml_per_24h")
        )
        out.append(o)
    if entry.note is not None:
        o = obs("note", codeable_concept(_local("note")), None)
        o["valueString"] = entry.note
        out.append(o)
    for index, medication in enumerate(entry.medications):
        out.append(
            medication_taken_to_administration(
                ctx,
                key(f"{MEDICATION_PREFIX}{index}"),
                entry.patient,
                medication,
                fallback_time=entry.recorded_at,
                patient_reported=True,
                recorded=entry.recorded_at,
            )
        )
    return out


def _vital_sign_observations(vitals: VitalSigns, obs: Any) -> list[JSON]:
    out: list[JSON] = []
    vital_signs = code_tables.code("hl7", "observation_category", "vital_signs")
    for vs in VITAL_SIGNS[:2]:
        out.extend(_single_vital(vitals, vs, obs, vital_signs))
    systolic, diastolic = vitals.systolic_mmhg, vitals.diastolic_mmhg
    if systolic is not None or diastolic is not None:
        o = obs(
            BLOOD_PRESSURE_PART,
            codeable_concept(code_tables.code("loinc", "vital_signs", "blood_pressure")),
            vital_signs,
            # The bp profile requires both components; claim it only when both are there.
            (PROFILE_BASE + "bp",) if systolic is not None and diastolic is not None else (),
        )
        mm_hg = code_tables.code("ucum", "units", "mm_hg")
        o["component"] = [
            {
                "code": codeable_concept(code_tables.code("loinc", "vital_signs", loinc_key)),
                "valueQuantity": quantity(getattr(vitals, field), mm_hg),
            }
            for field, loinc_key in BP_COMPONENTS
            if getattr(vitals, field) is not None
        ]
        out.append(o)
    for vs in VITAL_SIGNS[2:]:
        out.extend(_single_vital(vitals, vs, obs, vital_signs))
    return out


def _single_vital(vitals: VitalSigns, vs: VitalSign, obs: Any, category: Code) -> list[JSON]:
    value = getattr(vitals, vs.field)
    if value is None:
        return []
    loinc = [code_tables.code("loinc", "vital_signs", k) for k in vs.loinc_keys]
    o: JSON = obs(vs.part, codeable_concept(*loinc), category, (PROFILE_BASE + vs.profile,))
    o["valueQuantity"] = quantity(value, code_tables.code("ucum", "units", vs.unit_key))
    return [o]


def observations_to_diary_entry(key: BusinessKey, parts: dict[str, JSON]) -> DiaryEntry:
    """The diary entry whose parts (part name -> resource, in input order) are given."""
    first = next(iter(parts.values()))
    patient = read_patient(require(first, "subject", first["resourceType"]), "subject")
    recorded_at = _recorded_at(parts)
    fields: dict[str, Any] = {}
    symptoms: list[SymptomRating] = []
    vitals: dict[str, Any] = {}
    medications: list[tuple[int, MedicationTaken]] = []
    from_response: MgAdl | None = None
    for part, res in parts.items():
        path = f"{res.get('resourceType')}[{part}]"
        if part == MG_ADL_PART:
            fields["mg_adl"] = _read_mg_adl(res, path)
        elif part == MG_ADL_RESPONSE_PART:
            from_response = read_mg_adl_response(res, path)
        elif part in ("fatigue", "muscle-weakness"):
            fields[part.replace("-", "_")] = int(require(res, "valueInteger", path))
        elif part.startswith(SYMPTOM_PREFIX):
            symptoms.append(_read_symptom(res, path))
        elif part == BLOOD_PRESSURE_PART:
            vitals.update(_read_blood_pressure(res, path))
        elif part.startswith("vital-"):
            vs = next((v for v in VITAL_SIGNS if v.part == part), None)
            if vs is None:
                raise InvalidInput(f"{path}: unknown vital sign part")
            value = require(require(res, "valueQuantity", path), "value", path + ".valueQuantity")
            vitals[vs.field] = int(value) if vs.is_int else float(value)
        elif part == "flare-up":
            fields["flare_up"] = bool(require(res, "valueBoolean", path))
        elif part == "fluids":
            q = require(res, "valueQuantity", path)
            fields["fluids_ml"] = int(require(q, "value", path + ".valueQuantity"))
        elif part == "note":
            fields["note"] = str(require(res, "valueString", path))
        elif part.startswith(MEDICATION_PREFIX):
            index = _index(part, MEDICATION_PREFIX, path)
            medications.append((index, administration_to_medication_taken(res)))
        else:
            raise InvalidInput(f"{path}: unknown diary entry part")
    # The response repeats the Observation: take whichever came, refuse two that disagree.
    if from_response is not None and fields.setdefault("mg_adl", from_response) != from_response:
        raise InvalidInput("diary entry: the MG-ADL response and Observation disagree")
    return DiaryEntry(
        entry_id=key.source_id,
        patient=patient,
        recorded_at=recorded_at,
        symptoms=tuple(symptoms),
        vitals=VitalSigns(**vitals) if vitals else None,
        medications=tuple(m for _, m in sorted(medications, key=lambda im: im[0])),
        **fields,
    )


def _recorded_at(parts: dict[str, JSON]) -> datetime:
    for res in parts.values():
        if res.get("resourceType") == "Observation" and "effectiveDateTime" in res:
            return read_date_time(res["effectiveDateTime"], "Observation.effectiveDateTime")
    for res in parts.values():
        if res.get("resourceType") == "QuestionnaireResponse" and "authored" in res:
            return read_date_time(res["authored"], "QuestionnaireResponse.authored")
    for res in parts.values():
        recorded = versions.get_recorded(res)
        if recorded is not None:
            return read_date_time(recorded, "MedicationAdministration.recorded")
    raise InvalidInput("diary entry: no resource carries the time it was recorded")


def _index(part: str, prefix: str, path: str) -> int:
    try:
        return int(part[len(prefix) :])
    except ValueError:
        raise InvalidInput(f"{path}: bad part index") from None


def _read_mg_adl(res: JSON, path: str) -> MgAdl:
    items: dict[str, int] = {}
    for comp in require(res, "component", path):
        coding = next(iter(codings(comp.get("code"))), {})
        item = code_tables.table("local").key_of(
            "mg_adl_items", coding.get("system"), coding.get("code")
        )
        if item is None:
            raise InvalidInput(f"{path}.component: unknown MG-ADL item {coding.get('code')}")
        items[item] = int(require(comp, "valueInteger", path + ".component"))
    missing = set(MG_ADL_ITEMS) - set(items)
    if missing:
        raise InvalidInput(f"{path}: MG-ADL items missing: {sorted(missing)}")
    return MgAdl(**items)


def read_symptom_coding(concept: Any, path: str) -> Symptom:
    """The Symptom of a symptom CodeableConcept."""
    for c in codings(concept):
        found = code_tables.symptom_key(c.get("system"), c.get("code"))
        if found is not None:
            return Symptom(found)
    raise InvalidInput(f"{path}.code: not one of our symptom codes")


def read_severity(concept: Any, path: str) -> Severity:
    """The Severity of a severity CodeableConcept."""
    for c in codings(concept):
        found = code_tables.table("snomed").key_of("severity", c.get("system"), c.get("code"))
        if found is not None:
            return Severity(found)
    raise InvalidInput(f"{path}.valueCodeableConcept: not one of our severity codes")


def _read_symptom(res: JSON, path: str) -> SymptomRating:
    return SymptomRating(
        symptom=read_symptom_coding(require(res, "code", path), path),
        severity=read_severity(require(res, "valueCodeableConcept", path), path),
    )


def _read_blood_pressure(res: JSON, path: str) -> dict[str, int]:
    out: dict[str, int] = {}
    loinc = code_tables.table("loinc")
    for comp in require(res, "component", path):
        for c in codings(comp.get("code")):
            key = loinc.key_of("vital_signs", c.get("system"), c.get("code"))
            field = next((f for f, k in BP_COMPONENTS if k == key), None)
            if field is not None:
                value = require(require(comp, "valueQuantity", path), "value", path)
                out[field] = int(value)
    return out

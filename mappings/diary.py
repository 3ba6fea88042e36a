"""Diary entry <-> Observations (one per part) and MedicationAdministrations (one per dose)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
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
from mappings.items import DIARY_ITEMS, PYTHON_TYPE, VALUE_ITEMS, DiaryItem, Shape, ValueType
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
    PatientRef,
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


@dataclass(frozen=True)
class _Resources:
    """Builds the resources of one diary entry: its business keys and the Observation envelope."""

    ctx: MappingContext
    entry: DiaryEntry

    def key(self, part: str) -> BusinessKey:
        return business_key(self.ctx, DIARY_ENTRY, self.entry.entry_id, part)

    def obs(
        self, part: str, code: JSON, category: Code | None, profiles: tuple[str, ...] = ()
    ) -> JSON:
        return observation(
            self.ctx,
            self.key(part),
            self.entry.patient,
            self.entry.recorded_at,
            code,
            category=category,
            patient_reported=True,
            profiles=profiles,
        )


def diary_entry_to_observations(entry: DiaryEntry, ctx: MappingContext) -> list[JSON]:
    """All resources for one diary entry, in a stable order (not yet validated): the items'
    Observations in the order of the item table, then the MedicationAdministrations."""
    build = _Resources(ctx, entry)
    out = [resource for item in DIARY_ITEMS for resource in _WRITERS[item.shape](build, item)]
    return sorted(out, key=lambda resource: resource["resourceType"] == "MedicationAdministration")


def _value_observation(build: _Resources, item: DiaryItem) -> list[JSON]:
    value = getattr(build.entry, item.field)
    if value is None:
        return []
    o = build.obs(
        item.part, codeable_concept(item.observation_code()), _survey() if item.survey else None
    )
    if item.unit is not None:
        o["valueQuantity"] = quantity(value, code_tables.code("ucum", "units", item.unit))
    else:
        o[item.fhir_value] = value
    return [o]


def _mg_adl_resources(build: _Resources, item: DiaryItem) -> list[JSON]:
    mg_adl, ctx = build.entry.mg_adl, build.ctx
    if mg_adl is None:
        return []
    o = build.obs(MG_ADL_PART, codeable_concept(_local("mg_adl_total")), _survey())
    o["valueInteger"] = mg_adl.total
    o["component"] = [
        {
            "code": codeable_concept(code_tables.code("local", "mg_adl_items", name)),
            "valueInteger": getattr(mg_adl, name),
        }
        for name in MG_ADL_ITEMS
    ]
    if not ctx.mg_adl_questionnaire_response:
        return [o]
    entry = build.entry
    qr = mg_adl_response(
        ctx, build.key(MG_ADL_RESPONSE_PART), entry.patient, entry.recorded_at, mg_adl
    )
    o["derivedFrom"] = [reference(f"QuestionnaireResponse/{qr['id']}")]
    return [o, qr]


def _symptom_observations(build: _Resources, item: DiaryItem) -> list[JSON]:
    out: list[JSON] = []
    seen: set[Symptom] = set()
    for rating in build.entry.symptoms:
        if rating.symptom in seen:
            raise MappingError(
                f"diary entry {build.entry.entry_id}: symptom {rating.symptom} twice"
            )
        seen.add(rating.symptom)
        o = build.obs(
            SYMPTOM_PREFIX + rating.symptom.value,
            codeable_concept(code_tables.symptom_code(rating.symptom.value)),
            _survey(),
        )
        o["valueCodeableConcept"] = codeable_concept(
            code_tables.code("snomed", "severity", rating.severity.value)
        )
        out.append(o)
    return out


def _vitals_observations(build: _Resources, item: DiaryItem) -> list[JSON]:
    vitals = build.entry.vitals
    return [] if vitals is None else _vital_sign_observations(vitals, build.obs)


def _medication_administrations(build: _Resources, item: DiaryItem) -> list[JSON]:
    entry = build.entry
    return [
        medication_taken_to_administration(
            build.ctx,
            build.key(f"{MEDICATION_PREFIX}{index}"),
            entry.patient,
            medication,
            fallback_time=entry.recorded_at,
            patient_reported=True,
            recorded=entry.recorded_at,
        )
        for index, medication in enumerate(entry.medications)
    ]


_WRITERS: dict[Shape, Callable[[_Resources, DiaryItem], list[JSON]]] = {
    Shape.VALUE: _value_observation,
    Shape.MG_ADL: _mg_adl_resources,
    Shape.SYMPTOMS: _symptom_observations,
    Shape.VITALS: _vitals_observations,
    Shape.MEDICATIONS: _medication_administrations,
}


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


@dataclass
class _Reading:
    """What the parts of one diary entry said so far, while they are read one by one."""

    fields: dict[str, Any] = dataclasses.field(default_factory=dict)
    symptoms: list[SymptomRating] = dataclasses.field(default_factory=list)
    vitals: dict[str, Any] = dataclasses.field(default_factory=dict)
    medications: list[tuple[int, MedicationTaken]] = dataclasses.field(default_factory=list)
    from_response: MgAdl | None = None

    def entry(self, entry_id: str, patient: PatientRef, recorded_at: datetime) -> DiaryEntry:
        fields = self.fields
        # The response repeats the Observation: take whichever came, refuse two that disagree.
        response = self.from_response
        if response is not None and fields.setdefault("mg_adl", response) != response:
            raise InvalidInput("diary entry: the MG-ADL response and Observation disagree")
        return DiaryEntry(
            entry_id=entry_id,
            patient=patient,
            recorded_at=recorded_at,
            symptoms=tuple(self.symptoms),
            vitals=VitalSigns(**self.vitals) if self.vitals else None,
            medications=tuple(m for _, m in sorted(self.medications, key=lambda im: im[0])),
            **fields,
        )


Reader = Callable[[_Reading, str, JSON, str], None]


def observations_to_diary_entry(key: BusinessKey, parts: dict[str, JSON]) -> DiaryEntry:
    """The diary entry whose parts (part name -> resource, in input order) are given."""
    first = next(iter(parts.values()))
    patient = read_patient(require(first, "subject", first["resourceType"]), "subject")
    recorded_at = _recorded_at(parts)
    reading = _Reading()
    for part, res in parts.items():
        path = f"{res.get('resourceType')}[{part}]"
        _reader(part, path)(reading, part, res, path)
    return reading.entry(key.source_id, patient, recorded_at)


def _reader(part: str, path: str) -> Reader:
    found = _EXACT_READERS.get(part)
    if found is not None:
        return found
    for prefix, reader in _PREFIX_READERS:
        if part.startswith(prefix):
            return reader
    raise InvalidInput(f"{path}: unknown diary entry part")


def _value_reader(item: DiaryItem) -> Reader:
    convert = PYTHON_TYPE[item.value_type or ValueType.STRING]

    def read(reading: _Reading, part: str, res: JSON, path: str) -> None:
        if item.unit is not None:
            holder, at = require(res, "valueQuantity", path), path + ".valueQuantity"
            value = require(holder, "value", at)
        else:
            value = require(res, item.fhir_value, path)
        reading.fields[item.field] = convert(value)

    return read


def _read_mg_adl_part(reading: _Reading, part: str, res: JSON, path: str) -> None:
    reading.fields["mg_adl"] = _read_mg_adl(res, path)


def _read_mg_adl_response_part(reading: _Reading, part: str, res: JSON, path: str) -> None:
    reading.from_response = read_mg_adl_response(res, path)


def _read_symptom_part(reading: _Reading, part: str, res: JSON, path: str) -> None:
    reading.symptoms.append(_read_symptom(res, path))


def _read_blood_pressure_part(reading: _Reading, part: str, res: JSON, path: str) -> None:
    reading.vitals.update(_read_blood_pressure(res, path))


def _read_vital_part(reading: _Reading, part: str, res: JSON, path: str) -> None:
    vs = next((v for v in VITAL_SIGNS if v.part == part), None)
    if vs is None:
        raise InvalidInput(f"{path}: unknown vital sign part")
    value = require(require(res, "valueQuantity", path), "value", path + ".valueQuantity")
    reading.vitals[vs.field] = int(value) if vs.is_int else float(value)


def _read_medication_part(reading: _Reading, part: str, res: JSON, path: str) -> None:
    index = _index(part, MEDICATION_PREFIX, path)
    reading.medications.append((index, administration_to_medication_taken(res)))


_EXACT_READERS: dict[str, Reader] = {
    MG_ADL_PART: _read_mg_adl_part,
    MG_ADL_RESPONSE_PART: _read_mg_adl_response_part,
    BLOOD_PRESSURE_PART: _read_blood_pressure_part,
    **{item.part: _value_reader(item) for item in VALUE_ITEMS},
}
_PREFIX_READERS: tuple[tuple[str, Reader], ...] = (
    (SYMPTOM_PREFIX, _read_symptom_part),
    ("vital-", _read_vital_part),
    (MEDICATION_PREFIX, _read_medication_part),
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

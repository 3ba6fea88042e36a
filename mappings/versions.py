"""The R4 <-> R5 differences we touch, as one table plus the functions that apply it.

MedicationAdministration and AdverseEvent differ for the elements we use; Observation is the
same in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mappings.context import FhirVersion
from mappings.errors import InvalidInput, UnsupportedVersion

JSON = dict[str, Any]

# R5 MedicationAdministration.recorded used in R4 via the HL7 cross-version extension.
XVER_RECORDED = (
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-MedicationAdministration.recorded"
)
ACCESS_DEVICE_ID = "access"


@dataclass(frozen=True)
class MedicationAdministrationShape:
    """How one FHIR version spells the MedicationAdministration elements that changed."""

    occurrence_prefix: str  # effective[x] (R4) -> occurence[x] (R5, sic)
    medication: str  # medication[x] (R4) -> medication: CodeableReference (R5)
    reason: str  # reasonCode: CodeableConcept (R4) -> reason: CodeableReference (R5)
    category_section: str  # hl7.yaml section: medication-admin-category / -location
    category_is_list: bool  # 0..1 (R4) -> 0..* (R5)
    actor_is_codeable_reference: bool  # performer.actor Reference (R4) / CodeableReference (R5)
    device_is_codeable_reference: bool  # device Reference(Device) (R4) / CodeableReference (R5)
    recorded_element: str | None  # R5 has recorded; R4 carries it in XVER_RECORDED


SHAPES: dict[FhirVersion, MedicationAdministrationShape] = {
    FhirVersion.R4: MedicationAdministrationShape(
        occurrence_prefix="effective",
        medication="medication[x]",
        reason="reasonCode",
        category_section="admin_category_r4",
        category_is_list=False,
        actor_is_codeable_reference=False,
        device_is_codeable_reference=False,
        recorded_element=None,
    ),
    FhirVersion.R5: MedicationAdministrationShape(
        occurrence_prefix="occurence",
        medication="medication",
        reason="reason",
        category_section="admin_location_r5",
        category_is_list=True,
        actor_is_codeable_reference=True,
        device_is_codeable_reference=True,
        recorded_element="recorded",
    ),
}

# Elements only one version has: how we tell the version of a MedicationAdministration.
_R5_ONLY = ("occurenceDateTime", "occurencePeriod", "occurenceTiming", "medication", "reason")
_R4_ONLY = (
    "effectiveDateTime",
    "effectivePeriod",
    "medicationReference",
    "medicationCodeableConcept",
    "reasonCode",
)


# QuestionnaireResponse.identifier: 0..1, an Identifier (R4); 0..*, a list (R5).
QR_IDENTIFIER_IS_LIST: dict[FhirVersion, bool] = {FhirVersion.R4: False, FhirVersion.R5: True}


def set_single_identifier(resource: JSON, version: FhirVersion) -> None:
    """Turn the envelope's one-identifier list into what the version's QuestionnaireResponse
    takes (an object in R4)."""
    if not QR_IDENTIFIER_IS_LIST[FhirVersion(version)]:
        (resource["identifier"],) = resource["identifier"]


def shape(version: FhirVersion) -> MedicationAdministrationShape:
    """The MedicationAdministration shape of a version."""
    try:
        return SHAPES[FhirVersion(version)]
    except (KeyError, ValueError):
        raise UnsupportedVersion(f"FHIR version {version!r} is not supported") from None


_AE_R5_ONLY = ("status", "code", "occurrenceDateTime", "supportingInfo")


def detect_version(resource: JSON) -> FhirVersion:
    """R4 or R5 from the elements a resource uses (R4 when nothing tells them apart)."""
    if resource.get("resourceType") == "QuestionnaireResponse":
        return FhirVersion.R5 if isinstance(resource.get("identifier"), list) else FhirVersion.R4
    if resource.get("resourceType") == "AdverseEvent":
        r5 = any(k in resource for k in _AE_R5_ONLY)
        return FhirVersion.R5 if r5 else FhirVersion.R4
    if resource.get("resourceType") == "MedicationAdministration":
        if any(k in resource for k in _R5_ONLY):
            return FhirVersion.R5
        if any(k in resource for k in _R4_ONLY):
            return FhirVersion.R4
    return FhirVersion.R4


def set_occurrence(ma: JSON, version: FhirVersion, value: str | JSON) -> None:
    """effective[x] / occurence[x]: a dateTime string or a Period."""
    suffix = "DateTime" if isinstance(value, str) else "Period"
    ma[shape(version).occurrence_prefix + suffix] = value


def get_occurrence(ma: JSON) -> str | JSON:
    """The dateTime string or Period of effective[x] / occurence[x]."""
    for prefix in ("effective", "occurence"):
        for suffix in ("DateTime", "Period"):
            if prefix + suffix in ma:
                value = ma[prefix + suffix]
                if isinstance(value, (str, dict)):
                    return value
    raise InvalidInput("MedicationAdministration: no effective[x] / occurence[x]")


def set_medication(
    ma: JSON, version: FhirVersion, *, reference: str | None = None, concept: JSON | None = None
) -> None:
    """medicationReference / medicationCodeableConcept (R4) or medication (R5)."""
    if shape(version).medication == "medication":
        ma["medication"] = (
            {"reference": {"reference": reference}} if reference else {"concept": concept}
        )
    elif reference:
        ma["medicationReference"] = {"reference": reference}
    else:
        ma["medicationCodeableConcept"] = concept


def get_medication(ma: JSON) -> tuple[str | None, JSON | None]:
    """(reference, concept) of the medication, whichever version spelt it."""
    if "medicationReference" in ma:
        return str(ma["medicationReference"].get("reference")), None
    if "medicationCodeableConcept" in ma:
        return None, ma["medicationCodeableConcept"]
    med = ma.get("medication")
    if isinstance(med, dict):
        if isinstance(med.get("reference"), dict):
            return str(med["reference"].get("reference")), None
        if isinstance(med.get("concept"), dict):
            return None, med["concept"]
    raise InvalidInput("MedicationAdministration: no medication")


def set_reasons(ma: JSON, version: FhirVersion, concepts: list[JSON]) -> None:
    """reasonCode (R4) or reason as CodeableReference (R5)."""
    if shape(version).reason == "reason":
        ma["reason"] = [{"concept": c} for c in concepts]
    else:
        ma["reasonCode"] = concepts


def get_reasons(ma: JSON) -> list[JSON]:
    """The reason concepts, whichever version spelt them."""
    if "reasonCode" in ma:
        return list(ma["reasonCode"])
    return [r["concept"] for r in ma.get("reason", []) if isinstance(r.get("concept"), dict)]


def category_section(version: FhirVersion) -> str:
    """The hl7.yaml section holding the setting codes of a version."""
    return shape(version).category_section


def set_category(ma: JSON, version: FhirVersion, concept: JSON) -> None:
    """category: one CodeableConcept (R4) or a list (R5)."""
    ma["category"] = [concept] if shape(version).category_is_list else concept


def get_categories(ma: JSON) -> list[JSON]:
    """The category concepts as a list, whichever version."""
    cat = ma.get("category")
    if cat is None:
        return []
    return list(cat) if isinstance(cat, list) else [cat]


def performer(version: FhirVersion, actor: JSON) -> JSON:
    """One performer entry; actor is a Reference (R4) or wrapped in a CodeableReference (R5)."""
    if shape(version).actor_is_codeable_reference:
        return {"actor": {"reference": actor}}
    return {"actor": actor}


def get_performer_actor(entry: JSON) -> JSON:
    """The actor Reference of a performer entry, whichever version."""
    actor = entry.get("actor", {})
    if isinstance(actor.get("reference"), dict):
        return dict(actor["reference"])
    return dict(actor)


def set_device(ma: JSON, version: FhirVersion, concept: JSON) -> None:
    """The access device: a contained Device (R4) or a CodeableReference concept (R5)."""
    if shape(version).device_is_codeable_reference:
        ma["device"] = [{"concept": concept}]
    else:
        contained = ma.setdefault("contained", [])
        contained.append({"resourceType": "Device", "id": ACCESS_DEVICE_ID, "type": concept})
        ma["device"] = [{"reference": f"#{ACCESS_DEVICE_ID}"}]


def get_device_concept(ma: JSON) -> JSON | None:
    """The access device concept, whichever version."""
    for dev in ma.get("device", []):
        if isinstance(dev.get("concept"), dict):
            return dict(dev["concept"])
        ref = dev.get("reference")
        if isinstance(ref, str) and ref.startswith("#"):
            for res in ma.get("contained", []):
                if res.get("resourceType") == "Device" and res.get("id") == ref[1:]:
                    return dict(res.get("type", {}))
    return None


def set_recorded(ma: JSON, version: FhirVersion, when: str) -> None:
    """recorded (R5) or its cross-version extension (R4)."""
    element = shape(version).recorded_element
    if element is not None:
        ma[element] = when
    else:
        ma.setdefault("extension", []).append({"url": XVER_RECORDED, "valueDateTime": when})


def get_recorded(ma: JSON) -> str | None:
    """The recorded dateTime, whichever version."""
    if isinstance(ma.get("recorded"), str):
        return str(ma["recorded"])
    for ext in ma.get("extension", []):
        if ext.get("url") == XVER_RECORDED:
            return str(ext.get("valueDateTime"))
    return None


@dataclass(frozen=True)
class AdverseEventShape:
    """How one FHIR version spells the AdverseEvent elements we use."""

    status: str | None  # R5 requires status (event-status); R4 has none
    event: str  # event (R4) -> code (R5)
    occurrence: str  # date (R4) -> occurrenceDateTime (R5)
    identifier_is_list: bool  # identifier 0..1 (R4) -> 0..* (R5)
    severity: bool  # R4 severity (adverse-event-severity, required binding); R5 dropped it
    instance: str  # suspectEntity.instance Reference (R4) -> instance[x] (R5)
    # "The observations that document it": R4 has no element for that. referenceDocument takes
    # only a DocumentReference and contributor only who took part, so subjectMedicalHistory,
    # the one R4 element taking Reference(Observation), carries them; R5 folded it (and
    # referenceDocument) into supportingInfo ("supporting information relevant to the event").
    supporting: str  # subjectMedicalHistory (R4) -> supportingInfo[].itemReference (R5)


ADVERSE_EVENT_SHAPES: dict[FhirVersion, AdverseEventShape] = {
    FhirVersion.R4: AdverseEventShape(
        status=None,
        event="event",
        occurrence="date",
        identifier_is_list=False,
        severity=True,
        instance="instance",
        supporting="subjectMedicalHistory",
    ),
    FhirVersion.R5: AdverseEventShape(
        status="completed",
        event="code",
        occurrence="occurrenceDateTime",
        identifier_is_list=True,
        severity=False,
        instance="instanceReference",
        supporting="supportingInfo",
    ),
}


def adverse_event_shape(version: FhirVersion) -> AdverseEventShape:
    """The AdverseEvent shape of a version."""
    try:
        return ADVERSE_EVENT_SHAPES[FhirVersion(version)]
    except (KeyError, ValueError):
        raise UnsupportedVersion(f"FHIR version {version!r} is not supported") from None


def shape_adverse_event(
    ae: JSON,
    version: FhirVersion,
    *,
    event: JSON,
    occurred: str,
    severity: JSON,
    suspect: str,
    supporting: list[str],
) -> None:
    """Set the version-specific AdverseEvent elements on an enveloped resource."""
    spec = adverse_event_shape(version)
    if not spec.identifier_is_list:
        ae["identifier"] = ae["identifier"][0]
    if spec.status is not None:
        ae["status"] = spec.status
    ae["actuality"] = "actual"
    ae[spec.event] = event
    ae[spec.occurrence] = occurred
    if spec.severity:
        ae["severity"] = severity
    ae["suspectEntity"] = [{spec.instance: {"reference": suspect}}]
    if spec.supporting == "supportingInfo":
        ae["supportingInfo"] = [{"itemReference": {"reference": r}} for r in supporting]
    else:
        ae[spec.supporting] = [{"reference": r} for r in supporting]


def get_adverse_event_links(ae: JSON) -> tuple[list[str], list[str]]:
    """(suspect entity references, supporting references), whichever version spelt them."""
    suspects = []
    for entity in ae.get("suspectEntity", []):
        instance = entity.get("instance") or entity.get("instanceReference") or {}
        if isinstance(instance.get("reference"), str):
            suspects.append(str(instance["reference"]))
    supporting = [
        str(r["reference"])
        for r in ae.get("subjectMedicalHistory", [])
        if isinstance(r.get("reference"), str)
    ]
    for info in ae.get("supportingInfo", []):
        item = info.get("itemReference") or {}
        if isinstance(item.get("reference"), str):
            supporting.append(str(item["reference"]))
    return suspects, supporting

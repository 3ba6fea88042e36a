"""Our two input formats as frozen dataclasses: what a diary app sends us, independent of FHIR.

These are the contract between the HTTP schemas (service/schemas), the mapping to FHIR (mappings/)
and everything that stores or compares records. Values are already validated when they get here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Severity(StrEnum):
    """How bad a named symptom or an adverse reaction was."""

    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"


class Symptom(StrEnum):
    """Named symptoms an MG diary tracks, including the 'IVIG flu' after an infusion."""

    PTOSIS = "ptosis"
    DOUBLE_VISION = "double_vision"
    TROUBLE_CHEWING = "trouble_chewing"
    TROUBLE_SWALLOWING = "trouble_swallowing"
    SHORTNESS_OF_BREATH = "shortness_of_breath"
    ARM_WEAKNESS = "arm_weakness"
    LEG_WEAKNESS = "leg_weakness"
    HEADACHE = "headache"
    FEVER = "fever"
    CHILLS = "chills"
    MUSCLE_ACHES = "muscle_aches"
    NAUSEA = "nausea"


class Access(StrEnum):
    """The venous access used for an infusion."""

    PERIPHERAL = "peripheral"
    PORT = "port"


class Setting(StrEnum):
    """Where an infusion was given."""

    INFUSION_CENTRE = "infusion_centre"
    HOME = "home"


class InfusionStatus(StrEnum):
    """The state of an infusion; names follow FHIR's MedicationAdministration status."""

    COMPLETED = "completed"
    IN_PROGRESS = "in_progress"
    STOPPED = "stopped"  # stopped early
    NOT_DONE = "not_done"


class Route(StrEnum):
    """Route of administration of an infusion (IVIG is always intravenous)."""

    INTRAVENOUS = "intravenous"


class Reason(StrEnum):
    """Why an infusion is given."""

    MYASTHENIA_GRAVIS = "myasthenia_gravis"


@dataclass(frozen=True)
class PatientRef:
    """The patient: a FHIR reference ("Patient/123") or a business identifier, exactly one."""

    reference: str | None = None
    identifier_system: str | None = None
    identifier_value: str | None = None


@dataclass(frozen=True)
class MgAdl:
    """The 8 items of the MG Activities of Daily Living scale, each scored 0-3."""

    talking: int
    chewing: int
    swallowing: int
    breathing: int
    brushing_teeth_or_combing_hair: int
    arising_from_chair: int
    double_vision: int
    eyelid_droop: int

    @property
    def total(self) -> int:
        """The MG-ADL total 0-24; always computed, never taken from input."""
        return (
            self.talking
            + self.chewing
            + self.swallowing
            + self.breathing
            + self.brushing_teeth_or_combing_hair
            + self.arising_from_chair
            + self.double_vision
            + self.eyelid_droop
        )


MG_ADL_ITEMS: tuple[str, ...] = (
    "talking",
    "chewing",
    "swallowing",
    "breathing",
    "brushing_teeth_or_combing_hair",
    "arising_from_chair",
    "double_vision",
    "eyelid_droop",
)


@dataclass(frozen=True)
class SymptomRating:
    """A named symptom and how severe it was."""

    symptom: Symptom
    severity: Severity


@dataclass(frozen=True)
class VitalSigns:
    """Vital signs the patient measured at home, in fixed units."""

    body_temperature_c: float | None = None
    heart_rate_bpm: int | None = None
    systolic_mmhg: int | None = None  # blood pressure: both or neither
    diastolic_mmhg: int | None = None
    body_weight_kg: float | None = None
    spo2_percent: int | None = None


VITAL_FIELDS: tuple[str, ...] = (
    "body_temperature_c",
    "heart_rate_bpm",
    "systolic_mmhg",
    "diastolic_mmhg",
    "body_weight_kg",
    "spo2_percent",
)


@dataclass(frozen=True)
class MedicationTaken:
    """A medication dose taken by the patient (e.g. pyridostigmine) or given as premedication."""

    name: str
    rxnorm: str | None = None
    dose: float | None = None
    dose_unit: str | None = None  # UCUM, e.g. "mg"
    taken_at: datetime | None = None


@dataclass(frozen=True)
class DiaryEntry:
    """One patient-diary entry: at least one of the optional parts is present."""

    entry_id: str
    patient: PatientRef
    recorded_at: datetime  # timezone-aware
    mg_adl: MgAdl | None = None
    fatigue: int | None = None  # 0-10
    muscle_weakness: int | None = None  # overall, 0-10
    symptoms: tuple[SymptomRating, ...] = ()
    vitals: VitalSigns | None = None
    flare_up: bool | None = None
    fluids_ml: int | None = None
    medications: tuple[MedicationTaken, ...] = ()
    note: str | None = None

    def __post_init__(self) -> None:
        # Symptoms are a set, not a sequence: keep them in one canonical order (the order of
        # Symptom) so an entry read back from FHIR, in whatever order a server returns its
        # resources, equals the entry that was sent.
        order = list(Symptom)
        canonical = tuple(sorted(self.symptoms, key=lambda s: order.index(s.symptom)))
        object.__setattr__(self, "symptoms", canonical)


@dataclass(frozen=True)
class Product:
    """The immunoglobulin product: brand name and/or RxNorm code, at least one."""

    brand: str | None = None
    rxnorm: str | None = None


@dataclass(frozen=True)
class RateStep:
    """One step of the titration: from this time on, the pump ran at this rate."""

    at: datetime
    ml_per_hour: float


@dataclass(frozen=True)
class Performer:
    """Who gave the infusion: a FHIR reference (Practitioner/...) and/or a display name."""

    reference: str | None = None
    display: str | None = None


@dataclass(frozen=True)
class AdverseReaction:
    """A reaction during or after an infusion (e.g. 'IVIG flu' headache)."""

    symptom: Symptom
    severity: Severity
    onset: datetime


@dataclass(frozen=True)
class InfusionRecord:
    """One IVIG infusion, possibly spanning days."""

    infusion_id: str
    patient: PatientRef
    product: Product
    dose_g: float
    start: datetime
    status: InfusionStatus
    end: datetime | None = None
    lot_number: str | None = None
    dosing_weight_kg: float | None = None
    volume_ml: float | None = None
    rate_steps: tuple[RateStep, ...] = ()
    route: Route = Route.INTRAVENOUS
    access: Access | None = None
    setting: Setting | None = None
    status_reason: str | None = None
    premedications: tuple[MedicationTaken, ...] = ()
    reason: Reason = Reason.MYASTHENIA_GRAVIS
    performer: Performer | None = None
    adverse_reactions: tuple[AdverseReaction, ...] = field(default=())
    note: str | None = None

    @property
    def dose_g_per_kg(self) -> float | None:
        """Dose per kg of the body weight it was dosed on, when that weight is known."""
        if self.dosing_weight_kg is None or self.dosing_weight_kg == 0:
            return None
        return self.dose_g / self.dosing_weight_kg


Record = DiaryEntry | InfusionRecord

# What every record maps to; an infusion adds AdverseEvents that only repeat its symptom
# Observations (mappings/README), so a server may do without them.
CORE_RESOURCE_TYPES: tuple[str, ...] = ("Observation", "MedicationAdministration")
DERIVED_RESOURCE_TYPES: tuple[str, ...] = ("AdverseEvent",)


class RecordKind(StrEnum):
    """Our two input formats: the one name each goes by in identifiers, the ledger and the API.

    The value is also the kind segment of our business identifiers (mappings/identifiers.py).
    """

    DIARY_ENTRY = "diary-entry"
    INFUSION = "infusion"

    @property
    def id_field(self) -> str:
        """The field of the JSON format (and of the record) that holds the app's own id."""
        return "entry_id" if self is RecordKind.DIARY_ENTRY else "infusion_id"

    @property
    def resource_types(self) -> tuple[str, ...]:
        """The FHIR resource types a record of this kind is stored as on a server."""
        if self is RecordKind.DIARY_ENTRY:
            return CORE_RESOURCE_TYPES
        return CORE_RESOURCE_TYPES + DERIVED_RESOURCE_TYPES

    @staticmethod
    def of(record: Record) -> RecordKind:
        """The kind of a record."""
        return RecordKind.INFUSION if isinstance(record, InfusionRecord) else RecordKind.DIARY_ENTRY

    @staticmethod
    def of_json(item: object) -> RecordKind:
        """The kind a JSON object of ours looks like (an infusion carries infusion_id)."""
        is_infusion = isinstance(item, dict) and RecordKind.INFUSION.id_field in item
        return RecordKind.INFUSION if is_infusion else RecordKind.DIARY_ENTRY


def record_id(record: Record) -> str:
    """The app's own id of a record."""
    return record.entry_id if isinstance(record, DiaryEntry) else record.infusion_id

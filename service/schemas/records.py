"""Marshmallow schemas for our two input formats: JSON <-> mappings.records; unknown fields fail."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields as dc_fields
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_dump,
    post_load,
    validate,
    validates_schema,
)

from mappings import items
from mappings import records as r
from service.schemas.times import ClinicalDateTime

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
ID_MESSAGE = (
    "must be 1-128 characters: letters, digits, '.', '_' or '-', starting with a letter or digit"
)
RXNORM = validate.Regexp(r"^[0-9]{1,10}$", error="must be an RxNorm code (digits only)")
# Units a patient records doses in; all are valid UCUM codes.
DOSE_UNITS = ("mg", "g", "ug", "mL", "[iU]")
REFERENCE = (
    r"^(Patient|Practitioner|PractitionerRole|Organization|RelatedPerson)/[A-Za-z0-9.-]{1,64}$"
)
# A FHIR string needs visible content (whitespace alone, e.g. "\v", fails validation of what we
# emit) and SHOULD have no control characters but tab, CR and LF; lone surrogates are not text.
FHIR_TEXT = validate.Regexp(
    re.compile(r"^(?=.*\S)[^\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]*$", re.DOTALL),
    error="must contain visible text and no control characters",
)
AWARE = {"invalid": "Not a valid datetime.", "invalid_awareness": "must include a timezone offset"}


def _score(low: int, high: int) -> fields.Integer:
    return fields.Integer(strict=True, required=True, validate=validate.Range(low, high))


def _optional_score(low: int, high: int) -> fields.Integer:
    return fields.Integer(strict=True, load_default=None, validate=validate.Range(low, high))


def _number(low: float, high: float, **kwargs: Any) -> fields.Float:
    return fields.Float(allow_nan=False, validate=validate.Range(low, high), **kwargs)


def _text(max_length: int, **kwargs: Any) -> fields.String:
    return fields.String(validate=[validate.Length(1, max_length), FHIR_TEXT], **kwargs)


def _aware(**kwargs: Any) -> fields.AwareDateTime:
    return ClinicalDateTime(format="iso", error_messages=AWARE, **kwargs)


class StrictSchema(Schema):
    """Unknown fields are an error naming the field; None values are left out when dumping."""

    class Meta:
        unknown = RAISE

    @post_dump
    def _drop_empty(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {k: v for k, v in data.items() if v is not None and v != []}


def _build(cls: type, data: Mapping[str, Any]) -> Any:
    names = {f.name for f in dc_fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names})


class IdentifierSchema(StrictSchema):
    system = fields.Url(required=True, schemes={"http", "https", "urn"}, require_tld=False)
    value = _text(256, required=True)


class PatientSchema(StrictSchema):
    """{"reference": "Patient/123"} or {"identifier": {"system", "value"}}: exactly one."""

    reference = fields.String(
        validate=validate.Regexp(r"^Patient/[A-Za-z0-9.-]{1,64}$", error="must be Patient/<id>")
    )
    identifier = fields.Nested(IdentifierSchema)

    @validates_schema
    def _exactly_one(self, data: dict[str, Any], **_: Any) -> None:
        if ("reference" in data) == ("identifier" in data):
            raise ValidationError("give exactly one of reference or identifier", "_schema")

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> r.PatientRef:
        if "reference" in data:
            return r.PatientRef(reference=data["reference"])
        ident = data["identifier"]
        return r.PatientRef(identifier_system=ident["system"], identifier_value=ident["value"])


class PatientField(fields.Nested):
    """Dumps a PatientRef back to the same two-shape JSON it was loaded from."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(PatientSchema, **kwargs)

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        if value is None:
            return None
        if value.reference is not None:
            return {"reference": value.reference}
        return {"identifier": {"system": value.identifier_system, "value": value.identifier_value}}


class MgAdlSchema(StrictSchema):
    """The 8 MG-ADL items, 0-3 each; the total is computed by us, so it is not an input field."""

    talking = _score(0, 3)
    chewing = _score(0, 3)
    swallowing = _score(0, 3)
    breathing = _score(0, 3)
    brushing_teeth_or_combing_hair = _score(0, 3)
    arising_from_chair = _score(0, 3)
    double_vision = _score(0, 3)
    eyelid_droop = _score(0, 3)
    # Answers carry the total; an input may echo it back, but it must agree with the items.
    total = _optional_score(0, 24)

    @validates_schema
    def _total_agrees(self, data: dict[str, Any], **_: Any) -> None:
        given = data.get("total")
        if given is not None and all(item in data for item in r.MG_ADL_ITEMS):
            computed = sum(data[item] for item in r.MG_ADL_ITEMS)
            if given != computed:
                raise ValidationError(f"is {given} but the items add up to {computed}", "total")

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> r.MgAdl:
        return r.MgAdl(**{item: data[item] for item in r.MG_ADL_ITEMS})


class SymptomRatingSchema(StrictSchema):
    symptom = fields.Enum(r.Symptom, by_value=True, required=True)
    severity = fields.Enum(r.Severity, by_value=True, required=True)

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> r.SymptomRating:
        return r.SymptomRating(**data)


class VitalSignsSchema(StrictSchema):
    body_temperature_c = _number(30, 45, load_default=None)
    heart_rate_bpm = _optional_score(20, 250)
    systolic_mmhg = _optional_score(50, 300)
    diastolic_mmhg = _optional_score(20, 200)
    body_weight_kg = _number(1, 500, load_default=None)
    spo2_percent = _optional_score(50, 100)

    @validates_schema
    def _consistent(self, data: dict[str, Any], **_: Any) -> None:
        if all(v is None for v in data.values()):
            raise ValidationError("give at least one vital sign", "_schema")
        systolic, diastolic = data.get("systolic_mmhg"), data.get("diastolic_mmhg")
        if (systolic is None) != (diastolic is None):
            missing = "diastolic_mmhg" if diastolic is None else "systolic_mmhg"
            raise ValidationError("blood pressure needs both systolic and diastolic", missing)
        if systolic is not None and diastolic is not None and systolic <= diastolic:
            raise ValidationError("must be greater than diastolic_mmhg", "systolic_mmhg")

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> r.VitalSigns:
        return r.VitalSigns(**data)


class MedicationTakenSchema(StrictSchema):
    name = _text(200, required=True)
    rxnorm = fields.String(load_default=None, validate=RXNORM)
    dose = _number(0.000001, 100000, load_default=None)
    dose_unit = fields.String(load_default=None, validate=validate.OneOf(DOSE_UNITS))
    taken_at = _aware(load_default=None)

    @validates_schema
    def _dose_with_unit(self, data: dict[str, Any], **_: Any) -> None:
        if (data.get("dose") is None) != (data.get("dose_unit") is None):
            missing = "dose_unit" if data.get("dose_unit") is None else "dose"
            raise ValidationError("dose and dose_unit go together", missing)

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> r.MedicationTaken:
        return r.MedicationTaken(**data)


DIARY_PARTS = items.DIARY_PARTS  # the parts besides the envelope, from the item table


def _unique(key: str, items: list[Any], field_name: str) -> None:
    seen: set[Any] = set()
    for item in items:
        value = getattr(item, key)
        if value in seen:
            raise ValidationError(f"{value} is listed more than once", field_name)
        seen.add(value)


def _value_field(item: items.DiaryItem) -> fields.Field:
    """The field of a VALUE item, from its row: type and range."""
    low, high = item.minimum, item.maximum
    if item.value_type is items.ValueType.BOOLEAN:
        return fields.Boolean(load_default=None, truthy={True}, falsy={False})
    if item.value_type is items.ValueType.STRING and high is not None:
        return _text(int(high), load_default=None)
    if item.value_type is items.ValueType.INTEGER and low is not None and high is not None:
        return _optional_score(int(low), int(high))
    if item.value_type is items.ValueType.NUMBER and low is not None and high is not None:
        return _number(low, high, load_default=None)
    raise ValueError(f"diary item {item.field}: no schema field for its row")


# The structured items' fields; every VALUE item's field comes from its row.
STRUCTURED_FIELDS: dict[items.Shape, Callable[[], fields.Field]] = {
    items.Shape.MG_ADL: lambda: fields.Nested(MgAdlSchema, load_default=None),
    items.Shape.SYMPTOMS: lambda: fields.List(
        fields.Nested(SymptomRatingSchema), load_default=list, validate=validate.Length(max=12)
    ),
    items.Shape.VITALS: lambda: fields.Nested(VitalSignsSchema, load_default=None),
    items.Shape.MEDICATIONS: lambda: fields.List(
        fields.Nested(MedicationTakenSchema), load_default=list, validate=validate.Length(max=50)
    ),
}


def _item_field(item: items.DiaryItem) -> fields.Field:
    if item.shape is items.Shape.VALUE:
        return _value_field(item)
    return STRUCTURED_FIELDS[item.shape]()


class _DiaryEnvelopeSchema(StrictSchema):
    """A diary entry's envelope and rules; DiaryEntrySchema adds one field per diary item."""

    entry_id = fields.String(required=True, validate=validate.Regexp(ID_PATTERN, error=ID_MESSAGE))
    patient = PatientField(required=True)
    recorded_at = _aware(required=True)

    @validates_schema
    def _has_content(self, data: dict[str, Any], **_: Any) -> None:
        if all(data.get(part) in (None, []) for part in DIARY_PARTS):
            raise ValidationError(
                f"an entry needs at least one of: {', '.join(DIARY_PARTS)}", "_schema"
            )
        _unique("symptom", data.get("symptoms") or [], "symptoms")

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> r.DiaryEntry:
        return _build(r.DiaryEntry, data)


# The item fields follow the envelope's, in the order of the item table.
DiaryEntrySchema = type(
    "DiaryEntrySchema",
    (_DiaryEnvelopeSchema,),
    {
        "__doc__": "One diary entry; at least one part besides the envelope must be present.",
        "__module__": __name__,
        **{item.field: _item_field(item) for item in items.DIARY_ITEMS},
    },
)


class ProductSchema(StrictSchema):
    brand = _text(200, load_default=None)
    rxnorm = fields.String(load_default=None, validate=RXNORM)

    @validates_schema
    def _one_of(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("brand") is None and data.get("rxnorm") is None:
            raise ValidationError("give brand and/or rxnorm", "_schema")

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> r.Product:
        return r.Product(**data)


class RateStepSchema(StrictSchema):
    at = _aware(required=True)
    ml_per_hour = _number(0.1, 1000, required=True)

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> r.RateStep:
        return r.RateStep(**data)


class PerformerSchema(StrictSchema):
    reference = fields.String(
        load_default=None,
        validate=validate.Regexp(REFERENCE, error="must be Practitioner/<id> or similar"),
    )
    display = _text(200, load_default=None)

    @validates_schema
    def _one_of(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("reference") is None and data.get("display") is None:
            raise ValidationError("give reference and/or display", "_schema")

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> r.Performer:
        return r.Performer(**data)


class AdverseReactionSchema(StrictSchema):
    symptom = fields.Enum(r.Symptom, by_value=True, required=True)
    severity = fields.Enum(r.Severity, by_value=True, required=True)
    onset = _aware(required=True)

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> r.AdverseReaction:
        return r.AdverseReaction(**data)


NEEDS_END = {r.InfusionStatus.COMPLETED, r.InfusionStatus.STOPPED}
NEEDS_REASON = {r.InfusionStatus.NOT_DONE, r.InfusionStatus.STOPPED}


# The infusion's cross-field rules, each yielding (field, problem); messages keep this order.
Problems = Iterator[tuple[str, str]]


def _end_after_start(data: dict[str, Any]) -> Problems:
    start, end = data.get("start"), data.get("end")
    if end is not None and start is not None and end < start:
        yield "end", "must not be before start"


def _status_needs(data: dict[str, Any]) -> Problems:
    status = data.get("status")
    if status in NEEDS_END and data.get("end") is None:
        yield "end", f"is required when status is {status.value}"
    if status in NEEDS_REASON and data.get("status_reason") is None:
        yield "status_reason", f"is required when status is {status.value}"


def _dose_per_kg_derived(data: dict[str, Any]) -> Problems:
    per_kg, dose, weight = (data.get(k) for k in ("dose_g_per_kg", "dose_g", "dosing_weight_kg"))
    if per_kg is not None and (
        weight is None or dose is None or abs(per_kg - dose / weight) > 1e-6 * max(1, per_kg)
    ):
        yield (
            "dose_g_per_kg",
            "must equal dose_g / dosing_weight_kg (it is computed; you may leave it out)",
        )


def _steps_in_order_and_window(data: dict[str, Any]) -> Problems:
    start, end = data.get("start"), data.get("end")
    steps = data.get("rate_steps") or []
    if any(a.at >= b.at for a, b in itertools.pairwise(steps)):
        yield "rate_steps", "must be in strictly increasing time order"
    if start is not None and any(s.at < start or (end is not None and s.at > end) for s in steps):
        yield "rate_steps", "every step must lie between start and end"


_INFUSION_CHECKS: tuple[Callable[[dict[str, Any]], Problems], ...] = (
    _end_after_start,
    _status_needs,
    _dose_per_kg_derived,
    _steps_in_order_and_window,
)


class InfusionRecordSchema(StrictSchema):
    """One IVIG infusion; may span days, with the nurse's titration steps."""

    infusion_id = fields.String(
        required=True, validate=validate.Regexp(ID_PATTERN, error=ID_MESSAGE)
    )
    patient = PatientField(required=True)
    product = fields.Nested(ProductSchema, required=True)
    lot_number = _text(64, load_default=None)
    dose_g = _number(0.1, 300, required=True)
    dosing_weight_kg = _number(1, 500, load_default=None)
    # Derived like the MG-ADL total: echoed back in answers, checked (never trusted) on input.
    dose_g_per_kg = fields.Float(allow_nan=False, load_default=None)
    volume_ml = _number(1, 5000, load_default=None)
    start = _aware(required=True)
    end = _aware(load_default=None)
    rate_steps = fields.List(
        fields.Nested(RateStepSchema), load_default=list, validate=validate.Length(max=50)
    )
    route = fields.Enum(r.Route, by_value=True, load_default=r.Route.INTRAVENOUS)
    access = fields.Enum(r.Access, by_value=True, load_default=None)
    setting = fields.Enum(r.Setting, by_value=True, load_default=None)
    status = fields.Enum(r.InfusionStatus, by_value=True, required=True)
    status_reason = _text(500, load_default=None)
    premedications = fields.List(
        fields.Nested(MedicationTakenSchema), load_default=list, validate=validate.Length(max=20)
    )
    reason = fields.Enum(r.Reason, by_value=True, load_default=r.Reason.MYASTHENIA_GRAVIS)
    performer = fields.Nested(PerformerSchema, load_default=None)
    adverse_reactions = fields.List(
        fields.Nested(AdverseReactionSchema), load_default=list, validate=validate.Length(max=50)
    )
    note = _text(2000, load_default=None)

    @validates_schema
    def _consistent(self, data: dict[str, Any], **_: Any) -> None:
        errors: dict[str, list[str]] = {}
        for check in _INFUSION_CHECKS:
            for name, problem in check(data):
                errors.setdefault(name, []).append(problem)
        if errors:
            raise ValidationError(errors)

    @post_load
    def _make(self, data: dict[str, Any], **_: Any) -> r.InfusionRecord:
        return _build(r.InfusionRecord, data)

"""Our records <-> our JSON format, plainly: no validation, for JSON we wrote ourselves.

The HTTP and CLI edges validate input with the marshmallow schemas (service/schemas); what they
accepted is stored as this JSON (the ledger, exports) and read back here, so sync never needs
the schemas. Both directions follow the dataclasses in mappings/records.py, so a new field
needs no change here. The JSON equals what the schemas dump (a test holds the two equal):
None and empty lists are left out, times are ISO 8601 with their offset, enums their value, a
patient is {"reference"} or {"identifier": {"system", "value"}}, and the derived values
(MG-ADL total, dose per kg) are written for readers and ignored when read.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any

from mappings.errors import InvalidRecordJson
from mappings.records import (
    DiaryEntry,
    InfusionRecord,
    MgAdl,
    PatientRef,
    Record,
    RecordKind,
)

JSON = dict[str, Any]
Encode = Callable[[Any], Any]
Decode = Callable[[Any], Any]

# Derived values written after a field (the schemas dump them there): name, after, getter.
DERIVED: dict[type, tuple[tuple[str, str, Callable[[Any], Any]], ...]] = {
    MgAdl: (("total", "eyelid_droop", lambda m: m.total),),
    InfusionRecord: (("dose_g_per_kg", "dosing_weight_kg", lambda r: r.dose_g_per_kg),),
}
# The order the JSON format lists an infusion's fields in (the dataclass needs its required
# fields first); fields not listed follow in dataclass order.
KEY_ORDER: dict[type, tuple[str, ...]] = {
    InfusionRecord: (
        "infusion_id",
        "patient",
        "product",
        "lot_number",
        "dose_g",
        "dosing_weight_kg",
        "volume_ml",
        "start",
        "end",
        "rate_steps",
        "route",
        "access",
        "setting",
        "status",
    ),
}
RECORD_TYPES: dict[RecordKind, type] = {
    RecordKind.DIARY_ENTRY: DiaryEntry,
    RecordKind.INFUSION: InfusionRecord,
}


def record_to_json(record: Record) -> JSON:
    """A record as our JSON format."""
    cls: type = type(record)
    result: JSON = _encoder(cls)(record)
    return result


def record_from_json(kind: RecordKind, data: JSON) -> Record:
    """Our JSON format of a record (as record_to_json or the schemas wrote it) back to it."""
    try:
        record: Record = _decoder(RECORD_TYPES[kind])(data)
    except (KeyError, TypeError, ValueError) as exc:
        # The type only: the message could quote patient data.
        raise InvalidRecordJson(f"{kind} JSON does not read back: {type(exc).__name__}") from None
    return record


def _patient_to_json(patient: PatientRef) -> JSON:
    if patient.reference is not None:
        return {"reference": patient.reference}
    return {"identifier": {"system": patient.identifier_system, "value": patient.identifier_value}}


def _patient_from_json(data: JSON) -> PatientRef:
    if "reference" in data:
        return PatientRef(reference=data["reference"])
    ident = data["identifier"]
    return PatientRef(identifier_system=ident["system"], identifier_value=ident["value"])


def _optional(hint: Any) -> Any:
    """The X of `X | None` (None is left out of the JSON, so both directions skip it)."""
    if isinstance(hint, types.UnionType):
        (inner,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return inner
    return hint


def _value_encoder(hint: Any) -> Encode:
    hint = _optional(hint)
    if typing.get_origin(hint) is tuple:
        item = _value_encoder(typing.get_args(hint)[0])
        return lambda values: [item(v) for v in values]
    if hint is PatientRef:
        return _patient_to_json
    if dataclasses.is_dataclass(hint):
        return _encoder(typing.cast(type, hint))
    if isinstance(hint, type) and issubclass(hint, Enum):
        return lambda v: v.value
    if hint is datetime:
        return lambda v: v.isoformat()
    if hint is float:
        return float
    return _same  # str, int, bool


def _value_decoder(hint: Any) -> Decode:
    hint = _optional(hint)
    if typing.get_origin(hint) is tuple:
        item = _value_decoder(typing.get_args(hint)[0])
        return lambda values: tuple(item(v) for v in values)
    if hint is PatientRef:
        return _patient_from_json
    if dataclasses.is_dataclass(hint):
        return _decoder(typing.cast(type, hint))
    if isinstance(hint, type) and issubclass(hint, Enum):
        return typing.cast(Decode, hint)
    if hint is datetime:
        return datetime.fromisoformat
    if hint is float:
        return float
    return _same


def _ordered(cls: type, names: list[str]) -> list[str]:
    first = [n for n in KEY_ORDER.get(cls, ()) if n in names]
    return first + [n for n in names if n not in first]


@cache
def _encoder(cls: type) -> Callable[[Any], JSON]:
    hints = typing.get_type_hints(cls)
    steps: list[tuple[str, Callable[[Any], Any], Encode]] = []
    names = _ordered(cls, [f.name for f in dataclasses.fields(cls)])
    derived = DERIVED.get(cls, ())
    for name in names:
        steps.append((name, _getter(name), _value_encoder(hints[name])))
        steps.extend((d, get, _same) for d, after, get in derived if after == name)

    def encode(obj: Any) -> JSON:
        out: JSON = {}
        for name, get, convert in steps:
            value = get(obj)
            if value is None or (isinstance(value, (tuple, list)) and not value):
                continue  # left out, as the schemas leave out None and []
            out[name] = convert(value)
        return out

    return encode


def _same(value: Any) -> Any:
    return value


def _getter(name: str) -> Callable[[Any], Any]:
    return lambda obj: getattr(obj, name)


@cache
def _decoder(cls: type) -> Callable[[JSON], Any]:
    hints = typing.get_type_hints(cls)
    steps = [(f.name, _value_decoder(hints[f.name])) for f in dataclasses.fields(cls)]

    def decode(data: JSON) -> Any:
        return cls(**{name: convert(data[name]) for name, convert in steps if name in data})

    return decode

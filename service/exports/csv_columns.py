"""The analysts' CSV: one row per diary entry or infusion, one column per item.

Free-text notes are left out (they can identify a person); `has_note` says whether there was one.
Empty cells mean "not recorded". Times are ISO 8601 with the offset the diary app sent.
Text cells are neutralised against formula injection (`neutralise`); import undoes it (`restore`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from mappings.items import DIARY_ITEMS, DiaryItem, Shape
from mappings.records import (
    MG_ADL_ITEMS,
    VITAL_FIELDS,
    DiaryEntry,
    InfusionRecord,
    PatientRef,
    Symptom,
)

Column = tuple[str, str, Callable[[Any], Any]]


def _patient(ref: PatientRef) -> str:
    if ref.reference:
        return ref.reference
    return f"{ref.identifier_system}|{ref.identifier_value}"


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _mg_adl_item(item: str) -> Callable[[DiaryEntry], Any]:
    return lambda e: getattr(e.mg_adl, item) if e.mg_adl else None


def _symptom(symptom: Symptom) -> Callable[[DiaryEntry], Any]:
    def get(entry: DiaryEntry) -> str | None:
        for rating in entry.symptoms:
            if rating.symptom == symptom:
                return rating.severity.value
        return None

    return get


def _vital(name: str) -> Callable[[DiaryEntry], Any]:
    return lambda e: getattr(e.vitals, name) if e.vitals else None


def _reaction(symptom: Symptom) -> Callable[[InfusionRecord], Any]:
    def get(record: InfusionRecord) -> str | None:
        worst = [r.severity.value for r in record.adverse_reactions if r.symptom == symptom]
        order = ("severe", "moderate", "mild")
        return next((s for s in order if s in worst), None)

    return get


def _hours(record: InfusionRecord) -> float | None:
    if record.end is None:
        return None
    return round((record.end - record.start).total_seconds() / 3600, 2)


VITALS = VITAL_FIELDS  # one list of vital signs, for the columns we write and read


def _value_columns(item: DiaryItem) -> tuple[Column, ...]:
    name = item.field
    if item.csv_export_column != name:  # free text: only whether there was some
        return ((item.csv_export_column, item.describe, lambda e: getattr(e, name) is not None),)
    return ((name, item.describe, lambda e: getattr(e, name)),)


# The columns of each structured diary item; a VALUE item's column comes from its row.
STRUCTURED_COLUMNS: dict[Shape, tuple[Column, ...]] = {
    Shape.MG_ADL: (
        *((f"mg_adl_{i}", f"MG-ADL item {i}, 0-3", _mg_adl_item(i)) for i in MG_ADL_ITEMS),
        ("mg_adl_total", "MG-ADL total 0-24", lambda e: e.mg_adl.total if e.mg_adl else None),
    ),
    Shape.SYMPTOMS: tuple(
        (f"symptom_{s.value}", f"severity of {s.value}: mild|moderate|severe", _symptom(s))
        for s in Symptom
    ),
    Shape.VITALS: tuple((name, f"vital sign {name}", _vital(name)) for name in VITALS),
    Shape.MEDICATIONS: (
        ("medications", "number of medication doses taken", lambda e: len(e.medications)),
        (
            "medication_names",
            "names of the medications taken, '; '-separated",
            lambda e: "; ".join(m.name for m in e.medications) or None,
        ),
    ),
}


def _item_columns(item: DiaryItem) -> tuple[Column, ...]:
    if item.shape is Shape.VALUE:
        return _value_columns(item)
    return STRUCTURED_COLUMNS[item.shape]


DIARY_COLUMNS: tuple[Column, ...] = (
    ("entry_id", "the diary app's id of the entry", lambda e: e.entry_id),
    ("patient", "Patient/<id> or identifier system|value", lambda e: _patient(e.patient)),
    ("recorded_at", "when the entry was recorded", lambda e: _time(e.recorded_at)),
    *(column for item in DIARY_ITEMS for column in _item_columns(item)),
)

INFUSION_COLUMNS: tuple[Column, ...] = (
    ("infusion_id", "the app's id of the infusion", lambda r: r.infusion_id),
    ("patient", "Patient/<id> or identifier system|value", lambda r: _patient(r.patient)),
    ("product_brand", "immunoglobulin brand", lambda r: r.product.brand),
    ("product_rxnorm", "RxNorm code of the product", lambda r: r.product.rxnorm),
    ("dose_g", "dose in g", lambda r: r.dose_g),
    ("dosing_weight_kg", "body weight the dose was based on", lambda r: r.dosing_weight_kg),
    ("dose_g_per_kg", "dose per kg, when the weight is known", lambda r: r.dose_g_per_kg),
    ("volume_ml", "infused volume in ml", lambda r: r.volume_ml),
    ("start", "infusion start", lambda r: _time(r.start)),
    ("end", "infusion end", lambda r: _time(r.end)),
    ("duration_hours", "end - start in hours", _hours),
    ("status", "completed|in_progress|stopped|not_done", lambda r: r.status.value),
    ("lot_number", "product lot", lambda r: r.lot_number),
    ("route", "route of administration", lambda r: r.route.value),
    ("access", "peripheral|port", lambda r: r.access.value if r.access else None),
    ("setting", "infusion_centre|home", lambda r: r.setting.value if r.setting else None),
    ("rate_steps", "number of titration steps", lambda r: len(r.rate_steps)),
    (
        "max_rate_ml_per_hour",
        "highest pump rate",
        lambda r: max((s.ml_per_hour for s in r.rate_steps), default=None),
    ),
    (
        "premedication_names",
        "premedications, '; '-separated",
        lambda r: "; ".join(m.name for m in r.premedications) or None,
    ),
    *(
        (f"reaction_{s.value}", f"worst severity of a {s.value} reaction", _reaction(s))
        for s in Symptom
    ),
    ("has_note", "whether the record had a free-text note", lambda r: r.note is not None),
)


# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The quote OWASP prescribes; a cell already starting with it is quoted too, so `restore` can
# tell our prefix from the patient's own text and every text comes back exactly.
ESCAPE = "'"


def neutralise(text: str) -> str:
    """Patient text as a cell a spreadsheet shows as text: `'` before a formula start or `'`."""
    return ESCAPE + text if text.startswith((*FORMULA_STARTS, ESCAPE)) else text


def restore(cell: str) -> str:
    """Undo `neutralise` exactly: drop one `'` only where it stands before what it guards."""
    if cell.startswith(ESCAPE) and cell[1:].startswith((*FORMULA_STARTS, ESCAPE)):
        return cell[1:]
    return cell


def row(columns: tuple[Column, ...], record: Any) -> list[Any]:
    """One CSV row for a record; None becomes an empty cell, booleans true/false.

    Only text is neutralised: numbers stay numbers (a negative one is data, not a formula).
    """
    values = []
    for _, _, get in columns:
        value = get(record)
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, str):
            value = neutralise(value)
        values.append("" if value is None else value)
    return values


def header(columns: tuple[Column, ...]) -> list[str]:
    """The header row."""
    return [name for name, _, _ in columns]

"""The import CSV layout: one row per diary entry (or infusion), one column per item.

Column names are those `diarybridge export --format csv` writes, so an analyst's CSV comes back
in; import also reads `note` (which exports leave out) and `patient_reference` or
`patient_system` + `patient_value` instead of `patient`. Derived columns (`mg_adl_total`,
`dose_g_per_kg`) are checked against the items, counts and flags an export adds are ignored.
Empty cells mean "not recorded". An unknown column stops the file: a misspelt header would
otherwise drop that item from every row without a word.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from typing import Any

from mappings.items import DIARY_ITEMS, DiaryItem, Shape, ValueType
from mappings.records import MG_ADL_ITEMS, VITAL_FIELDS, RecordKind, Symptom
from service.exports.csv_columns import DIARY_COLUMNS as EXPORTED_DIARY_COLUMNS
from service.exports.csv_columns import header, restore
from service.imports.raw import RawItem, TextSource
from service.schemas import Problem

VITALS = VITAL_FIELDS  # one list of vital signs, for the columns we write and read
INT_VITALS = {"heart_rate_bpm", "systolic_mmhg", "diastolic_mmhg", "spo2_percent"}
PATIENT_COLUMNS = ("patient", "patient_reference", "patient_system", "patient_value")

# The columns of each structured diary item; a VALUE item's column is its field.
STRUCTURED_COLUMNS: dict[Shape, tuple[str, ...]] = {
    Shape.MG_ADL: (*(f"mg_adl_{item}" for item in MG_ADL_ITEMS), "mg_adl_total"),
    Shape.SYMPTOMS: tuple(f"symptom_{s.value}" for s in Symptom),
    Shape.VITALS: VITALS,
    Shape.MEDICATIONS: ("medication_names",),
}
DIARY_COLUMNS = (
    "entry_id",
    *PATIENT_COLUMNS,
    "recorded_at",
    *(
        column
        for item in DIARY_ITEMS
        for column in STRUCTURED_COLUMNS.get(item.shape, (item.field,))
    ),
)
# Written by exports, derived from other columns: accepted and not read.
DIARY_IGNORED = tuple(name for name in header(EXPORTED_DIARY_COLUMNS) if name not in DIARY_COLUMNS)

INFUSION_COLUMNS = (
    "infusion_id",
    *PATIENT_COLUMNS,
    "product_brand",
    "product_rxnorm",
    "dose_g",
    "dosing_weight_kg",
    "dose_g_per_kg",
    "volume_ml",
    "start",
    "end",
    "status",
    "status_reason",
    "lot_number",
    "route",
    "access",
    "setting",
    "premedication_names",
    "note",
    *(f"reaction_{s.value}" for s in Symptom),
)
INFUSION_IGNORED = ("duration_hours", "rate_steps", "max_rate_ml_per_hour", "has_note")


class CellError(ValueError):
    """A cell that is not the type its column needs."""


def _int(text: str) -> int:
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise CellError("must be a whole number")
    return int(text)


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CellError("must be a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise CellError("must be a finite number")
    return value


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered not in ("true", "false"):
        raise CellError("must be true or false")
    return lowered == "true"


def _names(text: str) -> list[dict[str, Any]]:
    return [{"name": name.strip()} for name in text.split(";") if name.strip()]


def _patient(cells: dict[str, str]) -> dict[str, Any]:
    """Our patient JSON from whichever patient columns the row fills."""
    if cells.get("patient_reference"):
        return {"reference": cells["patient_reference"]}
    if cells.get("patient_system") or cells.get("patient_value"):
        return {
            "identifier": {
                "system": cells.get("patient_system", ""),
                "value": cells.get("patient_value", ""),
            }
        }
    text = cells.get("patient", "")
    if text.startswith("Patient/") or "|" not in text:
        return {"reference": text}
    system, _, value = text.rpartition("|")
    return {"identifier": {"system": system, "value": value}}


def _put(problems: list[Problem], column: str, text: str, convert: Any) -> Any:
    try:
        return convert(text)
    except CellError as exc:
        problems.append(Problem(column, str(exc)))
        return None


def _text(text: str) -> str:
    return text


CELL_TYPES: dict[ValueType, Callable[[str], Any]] = {
    ValueType.INTEGER: _int,
    ValueType.NUMBER: _float,
    ValueType.BOOLEAN: _bool,
    ValueType.STRING: _text,
}
Cells = dict[str, str]
ItemCells = Callable[[DiaryItem, Cells, list[Problem]], Any]
ABSENT = object()  # the row says nothing of the item


def _value_cells(item: DiaryItem, cells: Cells, problems: list[Problem]) -> Any:
    if item.field not in cells:
        return ABSENT
    return _put(
        problems, item.field, cells[item.field], CELL_TYPES[item.value_type or ValueType.STRING]
    )


def _mg_adl_cells(item: DiaryItem, cells: Cells, problems: list[Problem]) -> Any:
    mg_adl = {
        name: _put(problems, f"mg_adl_{name}", cells[f"mg_adl_{name}"], _int)
        for name in (*MG_ADL_ITEMS, "total")
        if f"mg_adl_{name}" in cells
    }
    return mg_adl or ABSENT


def _symptom_cells(item: DiaryItem, cells: Cells, problems: list[Problem]) -> Any:
    symptoms = [
        {"symptom": s.value, "severity": cells[f"symptom_{s.value}"].lower()}
        for s in Symptom
        if f"symptom_{s.value}" in cells
    ]
    return symptoms or ABSENT


def _vital_cells(item: DiaryItem, cells: Cells, problems: list[Problem]) -> Any:
    vitals = {
        name: _put(problems, name, cells[name], _int if name in INT_VITALS else _float)
        for name in VITALS
        if name in cells
    }
    return vitals or ABSENT


def _medication_cells(item: DiaryItem, cells: Cells, problems: list[Problem]) -> Any:
    return _names(cells["medication_names"]) if "medication_names" in cells else ABSENT


ITEM_CELLS: dict[Shape, ItemCells] = {
    Shape.VALUE: _value_cells,
    Shape.MG_ADL: _mg_adl_cells,
    Shape.SYMPTOMS: _symptom_cells,
    Shape.VITALS: _vital_cells,
    Shape.MEDICATIONS: _medication_cells,
}


def diary_row(cells: dict[str, str]) -> tuple[dict[str, Any], list[Problem]]:
    """A CSV row (non-empty cells only) as our diary-entry JSON, and any cell problems."""
    problems: list[Problem] = []
    out: dict[str, Any] = {
        name: cells[name] for name in ("entry_id", "recorded_at") if name in cells
    }
    if any(c in cells for c in PATIENT_COLUMNS):
        out["patient"] = _patient(cells)
    for item in DIARY_ITEMS:
        value = ITEM_CELLS[item.shape](item, cells, problems)
        if value is not ABSENT:
            out[item.field] = value
    return out, problems


INFUSION_TEXT = (
    "infusion_id", "start", "end", "status", "status_reason", "lot_number", "route",
    "access", "setting", "note",
)  # fmt: skip
INFUSION_NUMBERS = ("dose_g", "dosing_weight_kg", "dose_g_per_kg", "volume_ml")
REACTION_NEEDS_ONSET = (
    "an adverse reaction needs its onset time: import reactions as JSON or NDJSON"
)


def _product(cells: Cells) -> dict[str, str]:
    columns = {key: f"product_{key}" for key in ("brand", "rxnorm")}
    return {key: cells[column] for key, column in columns.items() if column in cells}


def _reaction_problems(cells: Cells) -> list[Problem]:
    columns = (f"reaction_{s.value}" for s in Symptom)
    return [Problem(column, REACTION_NEEDS_ONSET) for column in columns if column in cells]


def infusion_row(cells: dict[str, str]) -> tuple[dict[str, Any], list[Problem]]:
    """A CSV row (non-empty cells only) as our infusion JSON, and any cell problems."""
    out: dict[str, Any] = {name: cells[name] for name in INFUSION_TEXT if name in cells}
    if any(c in cells for c in PATIENT_COLUMNS):
        out["patient"] = _patient(cells)
    product = _product(cells)
    if product:
        out["product"] = product
    problems: list[Problem] = []
    for name in INFUSION_NUMBERS:
        if name in cells:
            out[name] = _put(problems, name, cells[name], _float)
    if "premedication_names" in cells:
        out["premedications"] = _names(cells["premedication_names"])
    return out, problems + _reaction_problems(cells)


ROW_MAKERS: dict[str, Callable[[dict[str, str]], tuple[dict[str, Any], list[Problem]]]] = {
    RecordKind.DIARY_ENTRY: diary_row,
    RecordKind.INFUSION: infusion_row,
}
KNOWN_COLUMNS = {
    RecordKind.DIARY_ENTRY: (DIARY_COLUMNS, DIARY_IGNORED),
    RecordKind.INFUSION: (INFUSION_COLUMNS, INFUSION_IGNORED),
}


def header_kind(header: list[str], kind_hint: str | None) -> tuple[str | None, list[Problem]]:
    """Which record kind a header describes, and problems with its columns."""
    kind = RecordKind(kind_hint) if kind_hint else RecordKind.of_json(dict.fromkeys(header))
    known, ignored = KNOWN_COLUMNS[kind]
    problems = [
        Problem(name or "(empty)", "unknown column")
        for name in header
        if name not in known and name not in ignored
    ]
    duplicates = {name for name in header if header.count(name) > 1}
    problems.extend(Problem(name, "column given more than once") for name in sorted(duplicates))
    return (None if problems else kind), problems


class _NotCsv(Exception):
    """The reader cannot go on: the rest of the file is not CSV."""


def _rows(reader: Iterator[list[str]]) -> Iterator[tuple[int, list[str] | _NotCsv]]:
    """(row number, cells) from row 2 on, or a _NotCsv that ends the file."""
    number = 1
    while True:
        number += 1
        try:
            yield number, next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield number, _NotCsv(f"not CSV: {exc}")
            return


def _row_item(number: int, header: list[str], row: list[str], kind: str) -> RawItem | None:
    """One data row as a raw item; None for a blank row."""
    if not any(cell.strip() for cell in row):
        return None
    if len(row) != len(header):
        message = f"has {len(row)} cells; the header has {len(header)}"
        return RawItem(f"row {number}", None, (Problem("$", message),))
    # `restore` undoes the export's formula neutralisation ('=x -> =x), and only that.
    cells = {
        name: restore(cell.strip())
        for name, cell in zip(header, row, strict=True)
        if cell.strip() and name not in DIARY_IGNORED + INFUSION_IGNORED
    }
    data, cell_problems = ROW_MAKERS[kind](cells)
    return RawItem(f"row {number}", data, tuple(cell_problems), kind=kind)


def csv_items(text: TextSource, kind_hint: str | None = None) -> Iterator[RawItem]:
    """Each CSV row as our JSON format; a header with unknown columns stops the file."""
    reader = csv.reader(text)
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        return
    except csv.Error as exc:
        yield RawItem("row 1", None, (Problem("$", f"not CSV: {exc}"),))
        return
    kind, problems = header_kind(header, kind_hint)
    if kind is None:
        yield RawItem("row 1", None, tuple(problems))
        return
    for number, row in _rows(reader):
        if isinstance(row, _NotCsv):
            yield RawItem(f"row {number}", None, (Problem("$", str(row)),))
            return
        item = _row_item(number, header, row, kind)
        if item is not None:
            yield item


# Where a schema error under a structured field shows in the CSV: a field inside an object is
# a column of its own (mg_adl.talking -> mg_adl_talking); a whole list is one column.
NESTED_COLUMN = {"mg_adl": "mg_adl_{}", "vitals": "{}", "product": "product_{}"}
LIST_COLUMN = {
    "medications": "medication_names",
    "premedications": "premedication_names",
    "symptoms": "symptom_*",
}


def column_of(path: str) -> str:
    """The CSV column a schema error path points at (mg_adl.talking -> mg_adl_talking)."""
    head, _, rest = path.partition(".")
    if head in NESTED_COLUMN and rest:
        return NESTED_COLUMN[head].format(rest)
    column = next((c for name, c in LIST_COLUMN.items() if head.startswith(name)), None)
    if column is not None:
        return column
    return "patient" if head == "patient" else path

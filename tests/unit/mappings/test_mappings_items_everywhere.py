"""The diary item table is the one list of diary fields: every place that handles a diary field
handles every row (so a new row that one of them misses fails here), and a VALUE row travels
through the FHIR mapping, the schema and both CSV directions with nothing but its row."""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from mappings import diary, from_resources, to_resources
from mappings.context import FhirVersion, MappingContext
from mappings.items import (
    DIARY_ITEMS,
    DIARY_PARTS,
    RATINGS,
    VALUE_ITEMS,
    DiaryItem,
    Shape,
    ValueType,
)
from mappings.records import DiaryEntry, PatientRef
from service.exports import csv_columns
from service.exports.csv_columns import DIARY_COLUMNS as EXPORT_COLUMNS
from service.exports.csv_columns import header, row
from service.imports import csv_rows
from service.imports.csv_rows import DIARY_COLUMNS as IMPORT_COLUMNS
from service.imports.csv_rows import csv_items
from service.report.data import chartable_symptoms
from service.schemas import records as schema_records
from service.schemas.loading import dump_record
from service.schemas.records import DIARY_PARTS as SCHEMA_PARTS
from service.schemas.records import DiaryEntrySchema

ROOT = Path(__file__).resolve().parents[3]
ENVELOPE = ("entry_id", "patient", "recorded_at")
WHEN = datetime(2026, 11, 3, 20, 15, tzinfo=timezone(timedelta(hours=1)))
PATIENT = PatientRef(reference="Patient/synthetic-mg-001")
SAMPLE: dict[ValueType, Any] = {ValueType.BOOLEAN: True, ValueType.STRING: "synthetic note"}


def _openapi_entry() -> dict[str, Any]:
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    entry: dict[str, Any] = spec["components"]["schemas"]["DiaryEntry"]
    return entry


def _sample(item: DiaryItem) -> Any:
    if item.value_type in SAMPLE:
        return SAMPLE[item.value_type]
    value = item.maximum if item.maximum is not None else 1
    return int(value) if item.value_type is ValueType.INTEGER else float(value)


def _entry_with(item: DiaryItem) -> DiaryEntry:
    return DiaryEntry("E-items-1", PATIENT, WHEN, **{item.field: _sample(item)})


def test_the_table_lists_every_field_of_a_diary_entry_once() -> None:
    fields = [f.name for f in dataclasses.fields(DiaryEntry) if f.name not in ENVELOPE]
    assert list(DIARY_PARTS) == fields
    assert len({i.part for i in DIARY_ITEMS}) == len(DIARY_ITEMS)


@pytest.mark.parametrize("item", DIARY_ITEMS, ids=lambda i: i.field)
def test_openapi_and_the_schema_carry_every_item(item: DiaryItem) -> None:
    spec = _openapi_entry()["properties"]
    assert item.field in spec, f"openapi.yaml DiaryEntry lacks {item.field}"
    assert item.field in DiaryEntrySchema().fields, f"DiaryEntrySchema lacks {item.field}"
    assert item.field in SCHEMA_PARTS


@pytest.mark.parametrize("item", VALUE_ITEMS, ids=lambda i: i.field)
def test_openapi_states_the_rows_type_and_range(item: DiaryItem) -> None:
    prop = _openapi_entry()["properties"][item.field]
    assert prop["type"] == item.value_type
    if item.value_type is ValueType.STRING:
        assert (prop.get("minLength"), prop.get("maxLength")) == (1, item.maximum)
    elif item.value_type in (ValueType.INTEGER, ValueType.NUMBER):
        assert (prop.get("minimum"), prop.get("maximum")) == (item.minimum, item.maximum)


@pytest.mark.parametrize("item", VALUE_ITEMS, ids=lambda i: i.field)
def test_both_csv_directions_carry_every_value_item(item: DiaryItem) -> None:
    assert item.csv_export_column in header(EXPORT_COLUMNS)
    assert item.field in IMPORT_COLUMNS


@pytest.mark.parametrize("item", VALUE_ITEMS, ids=lambda i: i.field)
def test_a_value_item_travels_by_its_row_alone(item: DiaryItem) -> None:
    entry = _entry_with(item)
    item.observation_code()  # its code is in mappings/codes
    # The edge's schema accepts it, within the row's range.
    body = dump_record(entry)
    assert DiaryEntrySchema().load(body) == entry
    # To FHIR and back, in both versions.
    for version in FhirVersion:
        ctx = MappingContext("items-app", "urn:diarybridge:client:items-app", version)
        resources = to_resources([entry], ctx)
        assert [r["resourceType"] for r in resources] == ["Observation"]
        assert item.fhir_value in resources[0]
        assert from_resources(resources) == [entry]
    # Out as CSV (free text only as has_<field>) and back in.
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header(EXPORT_COLUMNS))
    writer.writerow(row(EXPORT_COLUMNS, entry))
    exported = dict(zip(*csv.reader(io.StringIO(out.getvalue())), strict=True))
    if item.csv_export_column != item.field:
        assert exported[item.csv_export_column] == "true"
        assert item.field not in exported
        return
    (raw,) = csv_items(io.StringIO(out.getvalue()))
    assert raw.problems == ()
    assert raw.data is not None
    assert DiaryEntrySchema().load(raw.data) == entry


def test_the_reports_ratings_are_the_rows_rating_series() -> None:
    assert RATINGS == ("fatigue", "muscle_weakness")
    assert set(RATINGS) <= set(chartable_symptoms())


def test_the_readme_documents_every_import_column() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for item in VALUE_ITEMS:
        assert f"`{item.field}`" in readme


def test_every_structured_shape_has_its_handler_in_every_place() -> None:
    structured = set(Shape) - {Shape.VALUE}
    assert set(diary._WRITERS) == set(Shape)
    assert set(csv_rows.ITEM_CELLS) == set(Shape)
    assert set(schema_records.STRUCTURED_FIELDS) == structured
    assert set(csv_columns.STRUCTURED_COLUMNS) == structured
    assert set(csv_rows.STRUCTURED_COLUMNS) == structured

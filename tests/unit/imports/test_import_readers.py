"""Readers of import files: JSON array, NDJSON and CSV, bad items reported with their position."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from mappings.records import MG_ADL_ITEMS
from service.exports.csv_columns import DIARY_COLUMNS as EXPORT_DIARY_COLUMNS
from service.exports.csv_columns import header, row
from service.imports import KindChoice, SourceFormat, read_items
from service.imports import sources as sources_module
from service.imports.csv_rows import DIARY_COLUMNS
from service.imports.validate import check_item
from service.schemas import RecordKind, load_records
from tests.api.samples import DIARY_ENTRY, INFUSION


def entries(n: int) -> list[dict[str, Any]]:
    return [dict(DIARY_ENTRY, entry_id=f"e-{i}", fatigue=i % 11) for i in range(n)]


def read(text: str, name: str, hint: str | None = None) -> tuple[SourceFormat, list[Any]]:
    fmt, items = read_items(io.StringIO(text), name, hint)
    return fmt, list(items)


HINTS = {KindChoice.DIARY: "diary-entry", KindChoice.INFUSION: "infusion"}


def checked(text: str, name: str, kind: KindChoice = KindChoice.AUTO) -> list[Any]:
    hint = HINTS.get(kind)
    fmt, items = read_items(io.StringIO(text), name, hint)
    return [check_item(item, kind, fmt) for item in items]


@pytest.mark.parametrize("read_size", [7, 64, 65536])
def test_json_array_elements_are_read_one_by_one_across_buffer_edges(
    monkeypatch: pytest.MonkeyPatch, read_size: int
) -> None:
    monkeypatch.setattr(sources_module, "READ_SIZE", read_size)
    data = entries(25)
    fmt, items = read(json.dumps(data, indent=2), "entries.json")
    assert fmt is SourceFormat.JSON
    assert [item.position for item in items] == [f"[{i}]" for i in range(25)]
    assert [item.data for item in items] == data


def test_json_array_of_nothing_and_a_non_object_element() -> None:
    assert read("  [ ]\n", "x.json")[1] == []
    _, items = read('[{"entry_id": "a"}, 42]', "x.json")
    assert items[1].data is None
    assert (items[1].position, items[1].problems[0].message) == ("[1]", "must be a JSON object")


def test_a_broken_json_array_reports_where_and_stops() -> None:
    text = json.dumps(entries(3))[:-1].replace('"e-2"', '"e-2" "oops"') + "]"
    _, items = read(text, "x.json")
    assert [i.data is not None for i in items] == [True, True, False]
    assert items[2].position == "[2]"
    assert items[2].problems[0].message.startswith("not JSON")


def test_ndjson_goes_on_after_a_bad_line_and_names_its_line_number() -> None:
    lines = [json.dumps(e) for e in entries(3)]
    text = "\n".join([lines[0], "{not json", "", lines[1], "[1, 2]", lines[2]]) + "\n"
    fmt, items = read(text, "diary.ndjson")
    assert fmt is SourceFormat.NDJSON
    assert [(i.position, i.data is not None) for i in items] == [
        ("line 1", True),
        ("line 2", False),
        ("line 4", True),
        ("line 5", False),
        ("line 6", True),
    ]
    assert items[3].problems[0].message == "must be a JSON object"


def test_format_is_sniffed_when_the_name_says_nothing() -> None:
    assert read(json.dumps(entries(1)), "-")[0] is SourceFormat.JSON
    assert read(json.dumps(entries(1)[0]) + "\n", "-")[0] is SourceFormat.NDJSON
    assert read("entry_id,patient,recorded_at,fatigue\n", "-")[0] is SourceFormat.CSV


def test_validation_problems_name_position_and_field() -> None:
    bad = dict(DIARY_ENTRY, entry_id="bad-1", fatigue=11)
    del bad["recorded_at"]
    results = checked("\n".join(json.dumps(e) for e in [entries(1)[0], bad]), "x.ndjson")
    assert results[0].record is not None and not results[0].problems
    assert results[1].record is None
    assert results[1].record_id == "bad-1"
    assert results[1].position == "line 2"
    assert {p.field for p in results[1].problems} == {"fatigue", "recorded_at"}


def test_auto_kind_tells_infusions_from_diary_entries() -> None:
    text = json.dumps([DIARY_ENTRY, INFUSION])
    results = checked(text, "mixed.json")
    assert [r.kind for r in results] == [RecordKind.DIARY_ENTRY, RecordKind.INFUSION]
    assert all(r.record is not None for r in results)
    forced = checked(text, "mixed.json", KindChoice.DIARY)
    assert forced[1].record is None  # an infusion is not a diary entry


CSV_HEADER = (
    "entry_id,patient,recorded_at,"
    + ",".join(f"mg_adl_{i}" for i in MG_ADL_ITEMS)
    + ",fatigue,symptom_ptosis,body_temperature_c,systolic_mmhg,diastolic_mmhg,flare_up,"
    "fluids_ml,medication_names,note\n"
)


def test_csv_rows_become_the_same_records_as_json() -> None:
    text = CSV_HEADER + (
        "c1,Patient/synthetic-mg-001,2026-11-03T20:15:00+01:00,1,1,0,0,2,1,1,2,6,moderate,"
        '36.8,124,78,false,1800,pyridostigmine,"Heavy arms, ""really"""\n'
        "c2,https://example.org/mrn|A-1,2026-11-04T20:15:00+01:00,,,,,,,,,3,,,,,,,,\n"
    )
    results = checked(text, "diary.csv")
    assert [r.position for r in results] == ["row 2", "row 3"]
    assert [r.problems for r in results] == [(), ()]
    expected = load_records(
        [
            {
                "entry_id": "c1",
                "patient": {"reference": "Patient/synthetic-mg-001"},
                "recorded_at": "2026-11-03T20:15:00+01:00",
                "mg_adl": dict(DIARY_ENTRY["mg_adl"]),
                "fatigue": 6,
                "symptoms": [{"symptom": "ptosis", "severity": "moderate"}],
                "vitals": {
                    "body_temperature_c": 36.8,
                    "systolic_mmhg": 124,
                    "diastolic_mmhg": 78,
                },
                "flare_up": False,
                "fluids_ml": 1800,
                "medications": [{"name": "pyridostigmine"}],
                "note": 'Heavy arms, "really"',
            },
            {
                "entry_id": "c2",
                "patient": {"identifier": {"system": "https://example.org/mrn", "value": "A-1"}},
                "recorded_at": "2026-11-04T20:15:00+01:00",
                "fatigue": 3,
            },
        ],
        RecordKind.DIARY_ENTRY,
    )
    assert [r.record for r in results] == expected


def test_bad_csv_cells_are_reported_by_row_and_column_and_the_rest_go_on() -> None:
    text = CSV_HEADER + (
        "c1,Patient/p-1,2026-11-03T20:15:00+01:00,1,1,0,0,2,1,1,x,6,,,,,maybe,,,\n"
        "c2,Patient/p-1,2026-11-03T20:15:00+01:00,1,1,0,0,2,1,1,9,6,awful,,,,,,,\n"
        "c3,Patient/p-1,2026-11-03T20:15:00+01:00,,,,,,,,,4,,,,,,,,\n"
        "c4,Patient/p-1\n"
    )
    results = checked(text, "diary.csv")
    problems = [(r.position, sorted(p.field for p in r.problems)) for r in results]
    assert problems == [
        ("row 2", ["flare_up", "mg_adl_eyelid_droop"]),
        ("row 3", ["mg_adl_eyelid_droop", "symptom_*"]),
        ("row 4", []),
        ("row 5", ["$"]),
    ]
    assert results[2].record is not None


def test_an_unknown_csv_column_stops_the_file_before_any_row() -> None:
    text = "entry_id,patient,recorded_at,fatigeu\nc1,Patient/p-1,2026-11-03T20:15:00+01:00,4\n"
    _, items = read(text, "diary.csv")
    assert len(items) == 1
    assert items[0].position == "row 1"
    assert [(p.field, p.message) for p in items[0].problems] == [("fatigeu", "unknown column")]


def test_csv_reactions_need_json_because_the_onset_is_missing() -> None:
    text = "infusion_id,patient,product_brand,dose_g,start,end,status,reaction_headache\n"
    text += "i1,Patient/p-1,Privigen,70,2026-11-10T09:00:00+01:00,2026-11-10T13:00:00+01:00,"
    text += "completed,mild\n"
    text += "i2,Patient/p-1,Privigen,70,2026-11-12T09:00:00+01:00,2026-11-12T13:00:00+01:00,"
    text += "completed,\n"
    results = checked(text, "infusions.csv")
    assert [r.kind for r in results] == [RecordKind.INFUSION] * 2
    assert [p.field for p in results[0].problems] == ["reaction_headache"]
    assert results[1].record is not None and results[1].record.dose_g == 70.0


def test_a_csv_written_by_export_reads_back_as_the_same_entries_without_notes() -> None:
    records = load_records(entries(5), RecordKind.DIARY_ENTRY)
    for record in records:
        assert record.medications  # export keeps only names; the sample's doses drop out
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header(EXPORT_DIARY_COLUMNS))
    writer.writerows(row(EXPORT_DIARY_COLUMNS, r) for r in records)
    results = checked(out.getvalue(), "export.csv")
    assert all(not r.problems for r in results)
    from dataclasses import replace

    from mappings.records import MedicationTaken

    expected = [
        replace(r, note=None, medications=tuple(MedicationTaken(m.name) for m in r.medications))
        for r in records
    ]
    assert [r.record for r in results] == expected
    assert set(header(EXPORT_DIARY_COLUMNS)) - set(DIARY_COLUMNS) == {"medications", "has_note"}

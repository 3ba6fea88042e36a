"""Exported resources back to our records and to the analysts' CSV, grouped on disk."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from export_synthetic import records, resources

from mappings.identifiers import resource_business_key
from mappings.records import MG_ADL_ITEMS, DiaryEntry, InfusionRecord, Symptom
from service.exports.csv_columns import DIARY_COLUMNS, INFUSION_COLUMNS, header
from service.exports.ndjson import TypeFiles, dumps
from service.exports.records import with_relative_references, write_records
from service.schemas import dump_record


def write_ndjson(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(dumps(i) + "\n" for i in items))
    return path


def convert(tmp_path: Path, items: list[dict[str, Any]], as_csv: bool) -> tuple[Path, Any]:
    # Reversed and split over two files: grouping must not depend on order or file.
    items = list(reversed(items))
    half = len(items) // 2
    paths = [
        write_ndjson(tmp_path / "a.ndjson", items[:half]),
        write_ndjson(tmp_path / "b.ndjson", items[half:]),
    ]
    out_dir = tmp_path / "out"
    out = TypeFiles(out_dir, ".csv" if as_csv else ".ndjson")
    errors = TypeFiles(out_dir)
    counts = write_records(
        paths, tmp_path / "scratch", out, errors, as_csv=as_csv, report=lambda _: None
    )
    out.commit()
    errors.commit()
    return out_dir, counts


def test_records_come_back_equal_to_what_was_mapped(tmp_path: Path) -> None:
    out_dir, counts = convert(tmp_path, resources(40), as_csv=False)
    originals = list(records(40))
    want = {json.dumps(dump_record(r), sort_keys=True) for r in originals}
    got = set()
    for name in ("diary-entries.ndjson", "infusions.ndjson"):
        got |= {
            json.dumps(json.loads(line), sort_keys=True)
            for line in (out_dir / name).read_text().splitlines()
        }
    assert got == want
    diaries = sum(isinstance(r, DiaryEntry) for r in originals)
    assert counts.records == {"diary-entry": diaries, "infusion": len(originals) - diaries}
    assert not (tmp_path / "scratch" / "groups.sqlite3").exists()


def test_csv_has_one_row_per_entry_and_one_column_per_item(tmp_path: Path) -> None:
    out_dir, _ = convert(tmp_path, resources(20), as_csv=True)
    originals = {r.entry_id: r for r in records(20) if isinstance(r, DiaryEntry)}
    with (out_dir / "diary-entries.csv").open(newline="") as source:
        rows = list(csv.DictReader(source))
    assert len(rows) == len(originals)
    assert list(rows[0]) == header(DIARY_COLUMNS)
    for row in rows:
        entry = originals[row["entry_id"]]
        assert entry.mg_adl is not None
        for item in MG_ADL_ITEMS:
            assert row[f"mg_adl_{item}"] == str(getattr(entry.mg_adl, item))
        assert row["mg_adl_total"] == str(entry.mg_adl.total)
        assert row["fatigue"] == str(entry.fatigue)
        rated = {s.symptom: s.severity.value for s in entry.symptoms}
        for symptom in Symptom:
            assert row[f"symptom_{symptom.value}"] == rated.get(symptom, "")
        assert row["has_note"] == ("true" if entry.note else "false")
        assert "synthetic note" not in row.values()  # free text stays out of the CSV
    with (out_dir / "infusions.csv").open(newline="") as source:
        infusions = list(csv.DictReader(source))
    assert list(infusions[0]) == header(INFUSION_COLUMNS)
    originals_inf = {r.infusion_id: r for r in records(20) if isinstance(r, InfusionRecord)}
    for row in infusions:
        record = originals_inf[row["infusion_id"]]
        assert float(row["dose_g"]) == record.dose_g
        assert float(row["duration_hours"]) == 4.0


def test_a_record_that_cannot_map_back_becomes_an_error_outcome_without_values(
    tmp_path: Path,
) -> None:
    items = resources(10)
    # A second copy of the first entry's first Observation under another id: one part twice.
    broken = dict(items[0], id="second-copy")
    items.append(broken)
    foreign = {"resourceType": "Observation", "id": "x", "status": "final", "code": {"text": "t"}}
    out_dir, counts = convert(tmp_path, [*items, foreign], as_csv=False)
    assert counts.not_ours == 1
    assert counts.failed_groups == 1
    outcome_lines = (out_dir / "OperationOutcome.ndjson").read_text().splitlines()
    assert len(outcome_lines) == 1
    outcome = json.loads(outcome_lines[0])
    assert outcome["resourceType"] == "OperationOutcome"
    assert f"Observation/{broken['id']}" in outcome["issue"][0]["diagnostics"]
    assert "synthetic-export-app" not in outcome_lines[0]  # ids and the error type only
    entries = (out_dir / "diary-entries.ndjson").read_text().splitlines()
    assert len(entries) == sum(isinstance(r, DiaryEntry) for r in records(10)) - 1


def test_type_files_are_invisible_until_committed_and_abort_leaves_nothing(
    tmp_path: Path,
) -> None:
    files = TypeFiles(tmp_path)
    files.write("Observation", "{}")
    assert not files.path("Observation").exists()
    files.abort()
    assert list(tmp_path.iterdir()) == []
    files = TypeFiles(tmp_path)
    files.write("Observation", "{}")
    assert files.commit() == {"Observation": 1}
    assert files.path("Observation").read_text() == "{}\n"


def test_retracted_records_are_left_out_of_records_and_csv(tmp_path: Path) -> None:
    items = resources(20)
    originals = list(records(20))
    gone = {originals[0].entry_id, originals[9].infusion_id}  # type: ignore[union-attr]
    retracted = 0
    for resource in items:
        if resource_business_key(resource).source_id in gone:
            # What the push's retraction leaves on the server: every resource entered-in-error.
            resource["status"] = "entered-in-error"
            retracted += 1
    for as_csv in (False, True):
        (tmp_path / str(as_csv)).mkdir()
        out_dir, counts = convert(tmp_path / str(as_csv), items, as_csv=as_csv)
        assert counts.retracted == retracted > 2
        ids = set()
        for name in ("diary-entries", "infusions"):
            path = out_dir / f"{name}{'.csv' if as_csv else '.ndjson'}"
            with path.open(newline="") as source:
                rows = (
                    list(csv.DictReader(source))
                    if as_csv
                    else [json.loads(line) for line in source]
                )
            ids |= {row.get("entry_id") or row.get("infusion_id") for row in rows}
        assert ids == {getattr(r, "entry_id", None) or r.infusion_id for r in originals} - gone
        assert counts.failed_groups == 0  # left out, not reported as broken


def test_records_from_absolute_references_name_the_patient_relative(tmp_path: Path) -> None:
    base = "http://127.0.0.1:8123/fhir"
    items = resources(10)
    for resource in items:
        resource["subject"]["reference"] = f"{base}/{resource['subject']['reference']}"
    paths = [write_ndjson(tmp_path / "abs.ndjson", items)]
    out = TypeFiles(tmp_path / "out")
    errors = TypeFiles(tmp_path / "out")
    write_records(
        paths, tmp_path / "scratch", out, errors, as_csv=False, report=lambda _: None, base_url=base
    )
    out.commit()
    got = {
        json.dumps(json.loads(line), sort_keys=True)
        for name in ("diary-entries.ndjson", "infusions.ndjson")
        for line in (tmp_path / "out" / name).read_text().splitlines()
    }
    assert got == {json.dumps(dump_record(r), sort_keys=True) for r in records(10)}


def test_only_references_to_the_server_base_are_made_relative() -> None:
    base = "http://127.0.0.1:8123/fhir"
    resource = {
        "subject": {"reference": f"{base}/Patient/p1"},
        "performer": [{"actor": {"reference": "https://elsewhere.example/Patient/p1"}}],
        "partOf": [{"reference": "Procedure/x"}],
    }
    assert with_relative_references(resource, base) == {
        "subject": {"reference": "Patient/p1"},
        "performer": [{"actor": {"reference": "https://elsewhere.example/Patient/p1"}}],
        "partOf": [{"reference": "Procedure/x"}],
    }
    assert with_relative_references(resource, None) is resource

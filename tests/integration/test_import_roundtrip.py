"""`diarybridge import` against the real FHIR server: what goes in comes back out, and a re-run
changes nothing (neither the outbox nor the server)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from service.cli import main
from service.config import FhirServerSettings
from service.exports.csv_columns import DIARY_COLUMNS, header, row
from service.schemas import RecordKind, load_records
from service.sync.pull import PullWindow, pull_records
from service.sync.target import make_client
from tests.unit.imports.synthetic import diary_entries, infusions

pytestmark = pytest.mark.integration


def unique_patient(tag: str) -> str:
    return f"Patient/synthetic-imp-{tag}-{datetime.now(UTC).strftime('%H%M%S%f')}"


def count_ours(fhir_server: str, resource_type: str, patient: str) -> int:
    bundle = requests.get(
        f"{fhir_server}/{resource_type}",
        params={"subject": patient, "_summary": "count"},
        timeout=30,
    ).json()
    return int(bundle["total"])


def run_import(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    db: Path,
    fhir_server: str,
    *args: str,
) -> tuple[int, str, str]:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("DIARYBRIDGE_FHIR_BASE_URL", fhir_server)
    code = main(["import", *args])
    out, err = capsys.readouterr()
    return code, out.strip(), err


def pulled(fhir_server: str, patient: str, kind: RecordKind) -> list[Any]:
    with make_client(FhirServerSettings(base_url=fhir_server)) as client:
        result = pull_records(client, patient, kind, PullWindow())
    assert result.unreadable == 0
    return result.records


def test_import_ndjson_json_and_csv_then_pull_back_the_same_records_and_rerun_changes_nothing(
    tmp_path: Path,
    fhir_server: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    patient, csv_patient = unique_patient("a"), unique_patient("b")
    diary = list(diary_entries(patient, 64))
    ivig = list(infusions(patient, 64))
    csv_diary = list(diary_entries(csv_patient, 12, seed=7))
    for entry in csv_diary:
        entry.pop("medications", None)  # the CSV layout carries medication names only
    (tmp_path / "diary.ndjson").write_text("".join(json.dumps(e) + "\n" for e in diary))
    (tmp_path / "infusions.json").write_text(json.dumps(ivig, indent=1))
    with (tmp_path / "diary.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header(DIARY_COLUMNS))
        writer.writerows(
            row(DIARY_COLUMNS, r) for r in load_records(csv_diary, RecordKind.DIARY_ENTRY)
        )
    files = [str(tmp_path / n) for n in ("diary.ndjson", "infusions.json", "diary.csv")]
    db = tmp_path / "ledger.sqlite3"

    code, summary, err = run_import(
        monkeypatch, capsys, db, fhir_server, *files, "--batch-size", "25"
    )
    total = len(diary) + len(ivig) + len(csv_diary)
    assert code == 0, err
    assert summary == (
        f"read {total}: created {total}, updated 0, unchanged 0, failed 0, invalid 0"
    )
    assert "entries/s" in err and patient not in err  # progress lines, no patient data

    # What the server holds maps back to exactly the records imported.
    assert pulled(fhir_server, patient, RecordKind.DIARY_ENTRY) == load_records(
        diary, RecordKind.DIARY_ENTRY
    )
    assert pulled(fhir_server, patient, RecordKind.INFUSION) == load_records(
        ivig, RecordKind.INFUSION
    )
    assert pulled(fhir_server, csv_patient, RecordKind.DIARY_ENTRY) == load_records(
        csv_diary, RecordKind.DIARY_ENTRY
    )
    counts = {
        (p, t): count_ours(fhir_server, t, p)
        for p in (patient, csv_patient)
        for t in ("Observation", "MedicationAdministration")
    }
    assert counts[(patient, "Observation")] > len(diary)

    # The same import again: nothing to push, nothing changes on the server.
    code, summary, _ = run_import(monkeypatch, capsys, db, fhir_server, *files)
    assert code == 0
    assert summary == f"read {total}: created 0, updated 0, unchanged {total}, failed 0, invalid 0"
    # And from an empty ledger (a new machine): the server still ends with no duplicates.
    code, summary, _ = run_import(
        monkeypatch, capsys, tmp_path / "new.sqlite3", fhir_server, *files
    )
    # (without a ledger the push cannot know the server had it: it may count it as created)
    assert code == 0 and "failed 0" in summary
    assert counts == {key: count_ours(fhir_server, key[1], key[0]) for key in counts}


def test_bad_records_go_to_the_failure_report_and_the_rest_to_the_server(
    tmp_path: Path,
    fhir_server: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    patient = unique_patient("c")
    good = list(diary_entries(patient, 5))
    bad = {**good[0], "entry_id": "synthetic-bad-1", "fatigue": 12}
    lines = [json.dumps(e) for e in good[:2]] + [json.dumps(bad), "not json"]
    lines += [json.dumps(e) for e in good[2:]]
    (tmp_path / "mixed.ndjson").write_text("\n".join(lines) + "\n")
    report = tmp_path / "failures.jsonl"

    code, summary, err = run_import(
        monkeypatch, capsys, tmp_path / "db.sqlite3", fhir_server,
        str(tmp_path / "mixed.ndjson"), "--report", str(report),
    )  # fmt: skip
    assert code == 1  # something was wrong: scripts can tell
    assert summary == "read 7: created 5, updated 0, unchanged 0, failed 0, invalid 2"
    failures = [json.loads(line) for line in report.read_text().splitlines()]
    assert [(f["position"], f["id"], f["field"]) for f in failures] == [
        ("line 3", "synthetic-bad-1", "fatigue"),
        ("line 4", None, "$"),
    ]
    assert "2 problem(s) in 2 record(s)" in err
    assert pulled(fhir_server, patient, RecordKind.DIARY_ENTRY) == load_records(
        good, RecordKind.DIARY_ENTRY
    )


def test_a_rerun_reports_records_the_server_never_took_and_exits_1_until_they_arrive(
    tmp_path: Path,
    fhir_server: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import service.sync.push as push

    patient = unique_patient("d")
    entries = list(diary_entries(patient, 12))
    bad = {e["entry_id"] for e in entries[::3]}  # 4 of 12
    real = push.mappings.record_to_resources

    def broken(record: Any, ctx: Any) -> list[dict[str, Any]]:
        resources = real(record, ctx)
        if record.entry_id in bad:
            resources = [dict(r) for r in resources]
            del resources[0]["code"]  # Observation.code is required: the server refuses it
        return resources

    monkeypatch.setattr(push.mappings, "record_to_resources", broken)
    (tmp_path / "diary.ndjson").write_text("".join(json.dumps(e) + "\n" for e in entries))
    args = (tmp_path / "db.sqlite3", fhir_server, str(tmp_path / "diary.ndjson"))

    code, summary, _ = run_import(monkeypatch, capsys, *args)
    assert code == 1
    assert summary.startswith("read 12: created 8, updated 0, unchanged 0, failed 4, invalid 0")

    code, summary, err = run_import(monkeypatch, capsys, *args)
    assert code == 1  # still not on the server: not done
    assert summary.startswith("read 12: created 0, updated 0, unchanged 8, failed 4, invalid 0")
    assert "; 4 not on the server: 4 failed: " in summary and "(HTTP 4" in summary
    assert "4 problem(s) in 4 record(s)" in err and patient not in summary + err
    assert len(pulled(fhir_server, patient, RecordKind.DIARY_ENTRY)) == 8

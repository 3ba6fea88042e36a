"""`diarybridge convert`: JSON arrays and NDJSON in, a Bundle or NDJSON out, errors by position."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from service.cli import main
from tests.api.samples import DIARY_ENTRY, INFUSION, diary


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_json_array_becomes_a_collection_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(tmp_path / "in.json", json.dumps([DIARY_ENTRY, diary(entry_id="second")]))
    assert main(["convert", source, "--app", "cli-test"]) == 0
    bundle = json.loads(capsys.readouterr().out)
    assert bundle["type"] == "collection"
    sources = {e["resource"]["meta"]["source"] for e in bundle["entry"]}
    assert sources == {"urn:diarybridge:client:cli-test"}
    systems = {e["resource"]["identifier"][0]["system"] for e in bundle["entry"]}
    assert systems == {"https://diarybridge.dev/fhir/sid/cli-test"}


def test_ndjson_of_both_kinds_becomes_ndjson_in_r5(tmp_path: Path) -> None:
    source = write(tmp_path / "in.ndjson", f"{json.dumps(DIARY_ENTRY)}\n\n{json.dumps(INFUSION)}\n")
    out = tmp_path / "out.ndjson"
    assert (
        main(["convert", source, "--format", "ndjson", "--fhir-version", "R5", "-o", str(out)]) == 0
    )
    resources = [json.loads(line) for line in out.read_text().splitlines()]
    admins = [r for r in resources if r["resourceType"] == "MedicationAdministration"]
    assert any("occurencePeriod" in r for r in admins)  # R5's spelling
    assert not any("effectivePeriod" in r for r in admins)


def test_transaction_bundle_from_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(INFUSION) + "\n"))
    assert main(["convert", "-", "--bundle", "transaction"]) == 0
    bundle = json.loads(capsys.readouterr().out)
    assert bundle["type"] == "transaction"
    assert {e["request"]["method"] for e in bundle["entry"]} == {"POST"}


def test_an_invalid_record_stops_with_its_position_and_field(tmp_path: Path) -> None:
    bad = diary(entry_id="bad", fatigue=42)
    source = write(tmp_path / "in.ndjson", f"{json.dumps(DIARY_ENTRY)}\n{json.dumps(bad)}\n")
    with pytest.raises(SystemExit) as stopped:
        main(["convert", source, "--format", "ndjson", "-o", str(tmp_path / "out")])
    assert "line 2" in str(stopped.value) and "fatigue" in str(stopped.value)


def test_a_line_that_is_not_json_is_named(tmp_path: Path) -> None:
    source = write(tmp_path / "in.ndjson", f"{json.dumps(DIARY_ENTRY)}\n{{oops\n")
    with pytest.raises(SystemExit) as stopped:
        main(["convert", source])
    assert "line 2" in str(stopped.value)

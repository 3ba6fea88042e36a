"""A rerun into the same folder replaces our earlier outputs and leaves everything else alone."""

from __future__ import annotations

from pathlib import Path

from service.exports.run import clear_outputs


def test_clear_outputs_removes_only_export_files(tmp_path: Path) -> None:
    ours = ["Observation.ndjson", "Observation.ndjson.part", "diary-entries.csv", "manifest.json"]
    theirs = ["notes.ndjson", "analysis.csv", "Patient.ndjson"]
    for name in ours + theirs:
        (tmp_path / name).write_text("x\n")
    (tmp_path / ".work").mkdir()
    (tmp_path / ".work" / "groups.sqlite3").write_text("x")
    clear_outputs(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(theirs)

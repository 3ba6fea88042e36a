"""The importer on a real (SQLite) outbox without a FHIR server: batches, failures, re-runs."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from service import store
from service.imports import Importer, KindChoice, PlainProgress
from tests.api.samples import DIARY_ENTRY, INFUSION

NAMESPACE = "import-test"


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = store.make_engine(f"sqlite:///{tmp_path / 'outbox.sqlite3'}")
    store.upgrade(engine)
    return store.make_session_factory(engine)


def ndjson(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def diary(i: int, **changes: Any) -> dict[str, Any]:
    return {**DIARY_ENTRY, "entry_id": f"imp-{i:05d}", **changes}


def run(sessions: sessionmaker[Session], text: str, name: str = "in.ndjson", **kw: Any) -> Any:
    failures: list[dict[str, Any]] = []
    importer = Importer(sessions, NAMESPACE, batch_size=100, on_failure=failures.append, **kw)
    importer.import_text(io.StringIO(text), name)
    return importer.finish(), failures


def test_every_valid_record_reaches_the_outbox_and_bad_ones_the_report(
    sessions: sessionmaker[Session],
) -> None:
    records = [diary(i) for i in range(250)]
    records.insert(120, diary(999, fatigue=42))
    text = ndjson(records) + "{broken\n" + json.dumps(INFUSION) + "\n"
    summary, failures = run(sessions, text)
    assert (summary.read, summary.invalid, summary.accepted, summary.queued) == (253, 2, 251, 251)
    assert summary.pushed is False
    assert failures == [
        {"file": "in.ndjson", "position": "line 121", "id": "imp-00999", "field": "fatigue",
         "message": "Must be greater than or equal to 0 and less than or equal to 10."},
        {"file": "in.ndjson", "position": "line 252", "id": None, "field": "$",
         "message": "not JSON: Expecting property name enclosed in double quotes"},
    ]  # fmt: skip
    with sessions() as session:
        counts = store.status_counts(session)
        entry = store.get_entry(
            session, NAMESPACE, "infusion", INFUSION["infusion_id"], patients=store.Patients.every()
        )
    assert sum(counts.counts.values()) == 251
    assert entry is not None and entry.record["dose_g"] == INFUSION["dose_g"]


def test_the_same_import_again_changes_nothing_and_a_change_is_queued(
    sessions: sessionmaker[Session],
) -> None:
    records = [diary(i) for i in range(230)]
    run(sessions, ndjson(records))
    with sessions() as session:
        before = store.get_entry(
            session, NAMESPACE, "diary-entry", "imp-00007", patients=store.Patients.every()
        )
    again, failures = run(sessions, ndjson(records))
    # Still waiting for a push: not "unchanged", which says the server has them.
    assert (again.unchanged, again.queued, again.not_delivered, failures) == (0, 230, 0, [])
    with sessions() as session:
        assert (
            store.get_entry(
                session, NAMESPACE, "diary-entry", "imp-00007", patients=store.Patients.every()
            )
            == before
        )
    records[7] = diary(7, fatigue=1)
    changed, _ = run(sessions, ndjson(records))
    assert (changed.unchanged, changed.queued) == (0, 230)
    with sessions() as session:
        after = store.get_entry(
            session, NAMESPACE, "diary-entry", "imp-00007", patients=store.Patients.every()
        )
    assert after is not None and before is not None
    assert after.record["fatigue"] == 1 and after.content_hash != before.content_hash


def test_a_record_repeated_in_one_file_ends_as_its_last_version(
    sessions: sessionmaker[Session],
) -> None:
    records = [diary(1, fatigue=2), diary(2), diary(1, fatigue=9)]
    summary, _ = run(sessions, ndjson(records))
    assert summary.accepted == 3
    with sessions() as session:
        entry = store.get_entry(
            session, NAMESPACE, "diary-entry", "imp-00001", patients=store.Patients.every()
        )
    assert entry is not None and entry.record["fatigue"] == 9


def test_kind_choice_rejects_the_other_kind(sessions: sessionmaker[Session]) -> None:
    summary, failures = run(sessions, ndjson([diary(1), INFUSION]), kind=KindChoice.INFUSION)
    assert (summary.accepted, summary.invalid) == (1, 1)
    assert {f["position"] for f in failures} == {"line 1"}


def test_a_file_that_is_not_utf8_is_one_failure_not_a_crash(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "latin1.ndjson"
    path.write_bytes(
        json.dumps(diary(1, note="café"), ensure_ascii=False).encode("latin-1") + b"\n"
    )
    failures: list[dict[str, Any]] = []
    importer = Importer(sessions, NAMESPACE, on_failure=failures.append)
    importer.import_path(str(path))
    assert importer.finish().accepted == 0
    assert [f["message"] for f in failures] == ["not UTF-8 text"]


def test_plain_progress_prints_rate_and_share_of_the_file(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "entries.ndjson"
    path.write_text(ndjson([diary(i) for i in range(300)]))
    out = io.StringIO()
    importer = Importer(sessions, NAMESPACE, progress=PlainProgress(out, every_seconds=0))
    importer.import_path(str(path))
    lines = out.getvalue().splitlines()
    assert lines[-1].startswith(f"import: {path}: 300 entries, ")
    assert lines[-1].endswith("entries/s, 100% of the file")
    assert len(lines) >= 3  # one every 100 entries, and the last


def test_an_id_of_another_patient_is_rejected_alone_and_takes_nothing_over(
    sessions: sessionmaker[Session],
) -> None:
    run(sessions, ndjson([diary(1, fatigue=2)]))  # imp-00001 is the sample patient's
    other = {"reference": "Patient/synthetic-mg-002"}
    records = [diary(2), diary(1, patient=other, fatigue=9), diary(3)]
    summary, failures = run(sessions, ndjson(records))
    assert (summary.accepted, summary.invalid) == (2, 1)
    assert [(f["position"], f["id"], f["field"]) for f in failures] == [
        ("line 2", "imp-00001", "patient")
    ]
    assert "synthetic" not in failures[0]["message"]
    with sessions() as session:
        entry = store.get_entry(
            session, NAMESPACE, "diary-entry", "imp-00001", patients=store.Patients.every()
        )
    assert entry is not None and (entry.patient_key, entry.record["fatigue"]) == (
        DIARY_ENTRY["patient"]["reference"],
        2,
    )
